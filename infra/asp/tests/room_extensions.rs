//! The property file is the truth for room extensions: what `asp room-extensions` prints is
//! what the transfer functions read as `ROOM_EXTENSIONS`, and it admits exactly the rooms.

use std::path::PathBuf;

use takeback_sma::target::{RoomDirectory, TargetRejection, TransferPolicy};

const VC: &str = "arn:aws:chime:us-east-1:111122223333:vc/abcdefghijklmnop";

fn example_property() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../property.example.toml")
}

#[test]
fn the_printed_room_extensions_admit_exactly_the_property_rooms() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_asp"))
        .arg("room-extensions")
        .arg(example_property())
        .output()
        .expect("run asp");
    assert!(output.status.success(), "{output:?}");
    let spec = String::from_utf8(output.stdout).expect("utf-8");
    let rooms = RoomDirectory::parse(spec.trim()).expect("the functions accept it");

    let property = asp::property::load(&example_property()).expect("example property");
    let extensions: Vec<String> = property
        .rooms
        .iter()
        .filter_map(|r| r.extension.as_ref().map(|(_trunk, ext)| ext.clone()))
        .collect();
    assert!(
        extensions.len() >= 2,
        "the example has rooms with extensions"
    );
    assert_eq!(rooms.len(), extensions.len());

    let policy = TransferPolicy::new("+18005550100", VC, [VC], None)
        .expect("policy")
        .with_room_directory(rooms);
    for extension in &extensions {
        assert!(policy.resolve(Some(extension), None).is_ok(), "{extension}");
    }
    let stranger = (1..10_000)
        .map(|n| n.to_string())
        .find(|n| !extensions.contains(n))
        .expect("a number that is no room");
    assert_eq!(
        policy.resolve(Some(&stranger), None),
        Err(TargetRejection::NotARoom)
    );
}
