//! `template.yaml` declares exactly the tables of `takeback_dynamo::tables` (the definitions the
//! local setup creates tables from): keys, attribute types, indexes, projections, TTL, and the
//! environment variables that hand the table names to the functions.
//!
//! yaml-rust2 loads CloudFormation's short-form tags (`!Ref X`, `!GetAtt X.Arn`, `!Sub ...`) as
//! their plain values, which is all this check needs.

use takeback_dynamo::tables::{self, IndexDef, KeyAttr, TableDef};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    YamlLoader::load_from_str(&text)
        .expect("test set-up")
        .into_iter()
        .next()
        .expect("test set-up")
}

fn str_of(y: &Yaml) -> &str {
    y.as_str().unwrap_or_default()
}

/// `[(AttributeName, KeyType)]` of a KeySchema.
fn key_schema(y: &Yaml) -> Vec<(String, String)> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .map(|k| {
                    (
                        str_of(&k["AttributeName"]).to_owned(),
                        str_of(&k["KeyType"]).to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected_keys(pk: KeyAttr, sk: Option<KeyAttr>) -> Vec<(String, String)> {
    let mut keys = vec![(pk.0.to_owned(), "HASH".to_owned())];
    if let Some(sk) = sk {
        keys.push((sk.0.to_owned(), "RANGE".to_owned()));
    }
    keys
}

fn key_attrs(def: &TableDef) -> Vec<&'static str> {
    let mut attrs: Vec<&str> = Vec::new();
    let keys = [Some(def.partition_key), def.sort_key]
        .into_iter()
        .flatten();
    let index_keys = def
        .indexes
        .iter()
        .flat_map(|i: &IndexDef| [Some(i.partition_key), i.sort_key])
        .flatten();
    for k in keys.chain(index_keys) {
        if !attrs.contains(&k.0) {
            attrs.push(k.0);
        }
    }
    attrs.sort_unstable();
    attrs
}

#[test]
fn template_declares_the_shared_table_definitions() {
    let doc = template();
    let resources = &doc["Resources"];
    assert!(!resources.is_badvalue(), "template.yaml has no Resources");
    for def in tables::ALL {
        let res = &resources[def.logical_id];
        assert_eq!(
            str_of(&res["Type"]),
            "AWS::DynamoDB::Table",
            "{} is not an AWS::DynamoDB::Table",
            def.logical_id
        );
        let props = &res["Properties"];

        assert_eq!(
            key_schema(&props["KeySchema"]),
            expected_keys(def.partition_key, def.sort_key),
            "{} KeySchema",
            def.logical_id
        );

        // AttributeDefinitions: exactly the key attributes, all strings.
        let mut defined: Vec<(String, String)> = props["AttributeDefinitions"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    str_of(&a["AttributeName"]).to_owned(),
                    str_of(&a["AttributeType"]).to_owned(),
                )
            })
            .collect();
        defined.sort();
        let expected: Vec<(String, String)> = key_attrs(def)
            .into_iter()
            .map(|a| (a.to_owned(), "S".to_owned()))
            .collect();
        assert_eq!(defined, expected, "{} AttributeDefinitions", def.logical_id);

        let gsis = props["GlobalSecondaryIndexes"]
            .as_vec()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            gsis.len(),
            def.indexes.len(),
            "{} GlobalSecondaryIndexes",
            def.logical_id
        );
        for index in def.indexes {
            let gsi = gsis
                .iter()
                .find(|g| str_of(&g["IndexName"]) == index.name)
                .unwrap_or_else(|| panic!("{} lacks index {}", def.logical_id, index.name));
            assert_eq!(
                key_schema(&gsi["KeySchema"]),
                expected_keys(index.partition_key, index.sort_key),
                "{}.{} KeySchema",
                def.logical_id,
                index.name
            );
            assert_eq!(
                str_of(&gsi["Projection"]["ProjectionType"]),
                "ALL",
                "{}.{} projection",
                def.logical_id,
                index.name
            );
        }

        let ttl = &props["TimeToLiveSpecification"];
        match def.ttl_attribute {
            Some(attr) => {
                assert_eq!(
                    str_of(&ttl["AttributeName"]),
                    attr,
                    "{} TTL",
                    def.logical_id
                );
                assert_eq!(
                    ttl["Enabled"].as_bool(),
                    Some(true),
                    "{} TTL",
                    def.logical_id
                );
            }
            None => assert!(
                ttl.is_badvalue() || ttl["Enabled"].as_bool() == Some(false),
                "{} must not expire items",
                def.logical_id
            ),
        }
        assert_eq!(
            str_of(&props["BillingMode"]),
            "PAY_PER_REQUEST",
            "{} billing (create_table uses on-demand)",
            def.logical_id
        );
    }
}

/// Every function environment that names a table's variable points it at that table.
#[test]
fn table_env_vars_reference_their_tables() {
    let doc = template();
    let mut seen = std::collections::HashSet::new();
    let mut check = |vars: &Yaml| {
        if let Some(map) = vars.as_hash() {
            for def in tables::ALL {
                if let Some(v) = map.get(&Yaml::String(def.env_var.to_owned())) {
                    assert_eq!(
                        str_of(v),
                        def.logical_id,
                        "{} must be !Ref {}",
                        def.env_var,
                        def.logical_id
                    );
                    seen.insert(def.env_var);
                }
            }
        }
    };
    check(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    for (_, res) in doc["Resources"].as_hash().unwrap() {
        check(&res["Properties"]["Environment"]["Variables"]);
    }
    for def in tables::ALL {
        assert!(
            seen.contains(def.env_var),
            "no function receives {}",
            def.env_var
        );
    }
}
