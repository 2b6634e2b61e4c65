//! The command line: `asp validate|plan|apply <property.toml>`, `asp trunk wait`, and the
//! imperative verbs (one API call each, `--output json`, `--dry-run`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::apply::{ApplyOptions, wait_active};
use crate::auth::{Credentials, DEFAULT_LWA_URL};
use crate::client::{ApiRequest, AspClient, Endpoints};
use crate::fake::{FakeConfig, FakeServer};
use crate::http::{HyperTransport, Transport};
use crate::plan::{Counts, Plan};
use crate::property::{self, DialPlan, Peer, PeerAddress, Region};
use crate::provision::{apply_property, plan_property};
use crate::retry::RetryPolicy;
use crate::validate;
use crate::wire;

/// The Alexa SBC a PBX trunk points at: `<trunkId>` followed by this suffix.
pub const SBC_HOST_SUFFIX: &str = ".pbx.us-east1.prod.sbc.amcs-tachyon.com";
pub const SBC_PORT: u16 = 5061;
/// Amazon's address block the PBX and the firewall must allow.
pub const AMAZON_CIDR: &str = "3.239.178.128/25";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "asp",
    version,
    about = "Provision Alexa Smart Properties calling for a property from one file"
)]
pub struct Cli {
    /// Region of the ASP organisation (plan/apply take it from the property file).
    #[arg(long, env = "ASP_REGION", value_enum, global = true)]
    pub region: Option<Region>,
    /// Base URL of the ASP REST APIs instead of the region's host (all APIs, PBX included).
    #[arg(long, env = "ASP_API_URL", global = true)]
    pub api_url: Option<String>,
    /// Login with Amazon token endpoint.
    #[arg(long, env = "ASP_LWA_URL", default_value = DEFAULT_LWA_URL, global = true)]
    pub lwa_url: String,
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: OutputFormat,
    /// Print the HTTP request (token redacted) instead of sending it (imperative verbs).
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// AWS Secrets Manager secret (name or ARN) holding the LWA credentials as JSON
    /// (`client_id`, `client_secret`, `refresh_token`, `service_provider_refresh_token`); an
    /// `ASP_*` variable that is set wins over it.
    #[arg(long, env = "ASP_SECRET_NAME", global = true)]
    pub secret_name: Option<String>,
    /// What `secret_name` held, read once per run before the first API call.
    #[arg(skip)]
    pub secret_credentials: Option<Credentials>,
    /// Requests in flight at once.
    #[arg(long, env = "ASP_CONCURRENCY", default_value_t = 8, global = true)]
    pub concurrency: usize,
    /// Seconds one request may take, retries included.
    #[arg(
        long,
        env = "ASP_REQUEST_DEADLINE_SECS",
        default_value_t = 120,
        global = true
    )]
    pub request_deadline: u64,
    /// One backoff step in milliseconds (tests shorten it).
    #[arg(
        long,
        env = "ASP_RETRY_STEP_MS",
        default_value_t = 1000,
        global = true,
        hide = true
    )]
    pub retry_step_ms: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct PropertyArgs {
    /// The property file (TOML).
    #[arg(env = "ASP_PROPERTY_FILE")]
    pub property: PathBuf,
    /// State file (default: next to the property file, `<name>.state.json`).
    #[arg(long, env = "ASP_STATE_FILE")]
    pub state: Option<PathBuf>,
    /// Delete what the tool owns and the file no longer has.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a property file without calling any API.
    Validate {
        #[arg(env = "ASP_PROPERTY_FILE")]
        property: PathBuf,
    },
    /// Print the property's room extensions as the transfer functions read them
    /// (`ROOM_EXTENSIONS`, e.g. `1101-1130,1201-1230`), so `connect-transfer` and the SMA
    /// handler refuse an extension that is no room. Pass it to `sam deploy` as `RoomExtensions`.
    RoomExtensions {
        #[arg(env = "ASP_PROPERTY_FILE")]
        property: PathBuf,
    },
    /// Show what apply would change (reads only).
    Plan(PropertyArgs),
    /// Make the APIs hold what the property file says.
    Apply {
        #[command(flatten)]
        property: PropertyArgs,
        /// Seconds to wait for a new trunk to become ACTIVE before mapping extensions.
        #[arg(long, default_value_t = 900)]
        trunk_timeout: u64,
        /// Seconds between trunk status polls.
        #[arg(long, default_value_t = 15)]
        poll_interval: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// SIP trunks (PBX API).
    #[command(subcommand)]
    Trunk(TrunkCommand),
    /// PBX extension ↔ room mappings.
    #[command(subcommand)]
    Extension(ExtensionCommand),
    /// Communication profiles of units.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Address books.
    #[command(subcommand)]
    AddressBook(AddressBookCommand),
    /// Contacts of an address book.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Address book ↔ unit associations.
    #[command(subcommand)]
    UnitAssociation(UnitAssociationCommand),
    /// Skill enablement per unit.
    #[command(subcommand)]
    Skill(SkillCommand),
    /// WebRTC service providers, their network mapping and account associations.
    #[command(subcommand)]
    ServiceProvider(ServiceProviderCommand),
    /// A loopback fake of LWA and the ASP APIs (tests and `make provision-demo`).
    #[command(hide = true)]
    FakeServer {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write `http://127.0.0.1:<port>` here once listening.
        #[arg(long)]
        addr_file: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        polls_until_active: u32,
    },
}

#[derive(Debug, Args)]
pub struct TrunkBody {
    /// The name the PBX certificate answers to (CN or SAN).
    #[arg(long)]
    pub tls_name: String,
    /// PEM file with the PBX certificate chain.
    #[arg(long)]
    pub certificate_chain: PathBuf,
    /// `IP:PORT` or `FQDN:PORT`; repeat for several peers.
    #[arg(long = "peer", required = true)]
    pub peers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TrunkCommand {
    Create(TrunkBody),
    Update {
        trunk_id: String,
        #[command(flatten)]
        body: TrunkBody,
    },
    Get {
        trunk_id: String,
    },
    List,
    Delete {
        trunk_id: String,
    },
    /// Poll until the trunk is ACTIVE, then print the PBX-side settings.
    Wait {
        trunk_id: String,
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        #[arg(long, default_value_t = 15)]
        interval: u64,
    },
    /// Print the PBX-side settings of a trunk (no API call).
    Settings {
        trunk_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    Map {
        trunk_id: String,
        extension: String,
        #[arg(long)]
        profile: String,
    },
    Remap {
        trunk_id: String,
        extension: String,
        #[arg(long)]
        profile: String,
    },
    Unmap {
        trunk_id: String,
        extension: String,
    },
    Get {
        trunk_id: String,
        extension: String,
    },
    List {
        trunk_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Create (or find: idempotent per unit) a unit's profile.
    Create {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        name: String,
    },
    Get {
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        unit: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
    Rename {
        profile_id: String,
        #[arg(long)]
        name: String,
    },
    Delete {
        profile_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AddressBookCommand {
    Create { name: String },
    List,
    Get { book_id: String },
    Rename { book_id: String, name: String },
    Delete { book_id: String },
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    Add {
        book_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, group = "target")]
        profile: Option<String>,
        #[arg(long = "phone", group = "target")]
        phones: Vec<String>,
        #[arg(long, group = "target")]
        provider_contact: Option<String>,
    },
    List {
        book_id: String,
    },
    Get {
        book_id: String,
        contact_id: String,
    },
    Delete {
        book_id: String,
        contact_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnitAssociationCommand {
    Add { book_id: String, unit_id: String },
    List { book_id: String },
    Remove { book_id: String, unit_id: String },
}

#[derive(Debug, Subcommand)]
pub enum SkillCommand {
    Enable {
        skill_id: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value = "live")]
        stage: String,
    },
    Disable {
        skill_id: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value = "live")]
        stage: String,
    },
    List {
        #[arg(long)]
        unit: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceProviderCommand {
    Create {
        #[arg(long)]
        logical_id: String,
        #[arg(long)]
        display_name: String,
        #[arg(long, default_value = "en-US")]
        locale: String,
    },
    Get {
        provider_id: String,
    },
    Delete {
        provider_id: String,
    },
    /// Map the provider to its WebRTC skill (network mapping).
    MapSkill {
        provider_id: String,
        skill_id: String,
    },
    GetNetwork {
        provider_id: String,
    },
    /// Associate a unit's profile with an external user id.
    Associate {
        provider_id: String,
        #[arg(long)]
        external_user: String,
        #[arg(long)]
        profile: String,
    },
    Dissociate {
        provider_id: String,
        #[arg(long)]
        external_user: String,
    },
    Query {
        provider_id: String,
        #[arg(long = "external-user", required = true)]
        external_users: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> Box<dyn std::error::Error> {
    Box::new(UsageError(message.into()))
}

/// `pbx.example.com:5061`, `192.0.2.1:5061`, `[2001:db8::1]:5061`.
pub fn parse_peer(text: &str) -> Result<Peer, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("peer {text:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("peer {text:?}: port must be 1–65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address = match host.parse() {
        Ok(ip) => {
            if let Some(problem) = validate::peer_ip_problem(&ip) {
                return Err(format!(
                    "peer {text:?}: {ip} is {problem}; the PBX needs a public static address"
                ));
            }
            PeerAddress::Ip(ip)
        }
        Err(_) if validate::is_valid_fqdn(host) => PeerAddress::Fqdn(host.to_ascii_lowercase()),
        Err(_) => {
            return Err(format!(
                "peer {text:?}: {host:?} is neither an IP address nor a fully qualified domain name"
            ));
        }
    };
    Ok(Peer { address, port })
}

/// What the PBX administrator sets up once the trunk is ACTIVE.
pub fn pbx_settings(trunk_id: &str) -> Value {
    json!({
        "trunkId": trunk_id,
        "sipServer": format!("{trunk_id}{SBC_HOST_SUFFIX}"),
        "port": SBC_PORT,
        "transport": "TLS 1.2 (enable TLS and UDP on the trunk; dial over TLS)",
        "media": "SRTP, RTP ports 10000-20000",
        "allowCidr": AMAZON_CIDR,
        "registration": "off (no registration, no authentication)",
    })
}

fn print_settings(settings: &Value, output: OutputFormat) {
    if output == OutputFormat::Json {
        println!("{settings}");
        return;
    }
    let field = |k: &str| {
        settings
            .get(k)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default()
    };
    println!("PBX-side settings for trunk {}:", field("trunkId"));
    println!("  SIP server (Alexa SBC): {}", field("sipServer"));
    println!("  port:                   {}", field("port"));
    println!("  transport:              {}", field("transport"));
    println!("  media:                  {}", field("media"));
    println!("  allow-list (firewall and PBX): {}", field("allowCidr"));
    println!("  registration:           {}", field("registration"));
}

fn endpoints(cli: &Cli, region: Region) -> Endpoints {
    match &cli.api_url {
        Some(url) => Endpoints {
            api_base: url.clone(),
            pbx_base: url.clone(),
            lwa_url: cli.lwa_url.clone(),
        },
        None => Endpoints {
            api_base: region.api_base().to_owned(),
            // The PBX API is documented on the North America host only.
            pbx_base: Region::Na.api_base().to_owned(),
            lwa_url: cli.lwa_url.clone(),
        },
    }
}

fn policy(cli: &Cli) -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(cli.request_deadline.max(1)),
        step: Duration::from_millis(cli.retry_step_ms),
        ..RetryPolicy::default()
    }
}

fn state_path(args: &PropertyArgs) -> PathBuf {
    args.state
        .clone()
        .unwrap_or_else(|| crate::state::default_path(&args.property))
}

fn print_plan(plan: &Plan, output: OutputFormat) {
    if output == OutputFormat::Json {
        println!("{}", plan.to_json());
        return;
    }
    for change in &plan.changes {
        println!("{change}");
    }
    if !plan.kept.is_empty() {
        println!("not in the file, kept (`--prune` deletes them):");
        for change in &plan.kept {
            println!("  {change}");
        }
    }
    let c = plan.counts();
    println!(
        "Plan: {} to create, {} to update, {} to delete; {} unchanged.",
        c.created, c.updated, c.deleted, plan.unchanged
    );
}

pub async fn run(cli: Cli) -> ExitCode {
    let output = cli.output;
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            if output == OutputFormat::Json {
                println!("{}", json!({ "error": e.to_string() }));
            }
            eprintln!("asp: {e}");
            if e.is::<UsageError>() || e.is::<property::LoadError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(mut cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let calls_apis = !matches!(
        cli.command,
        Command::FakeServer { .. } | Command::Validate { .. } | Command::RoomExtensions { .. }
    );
    if calls_apis
        && !cli.dry_run
        && let Some(name) = cli.secret_name.as_deref().filter(|n| !n.is_empty())
    {
        cli.secret_credentials = Some(crate::secret::credentials_from_secret(name).await?);
    }
    match &cli.command {
        Command::FakeServer {
            port,
            addr_file,
            polls_until_active,
        } => {
            let config = FakeConfig {
                polls_until_active: *polls_until_active,
                ..FakeConfig::default()
            };
            let server = FakeServer::bind(([127, 0, 0, 1], *port).into(), config).await?;
            let url = server.base_url();
            if let Some(file) = addr_file {
                let tmp = file.with_extension("tmp");
                std::fs::write(&tmp, &url)?;
                std::fs::rename(&tmp, file)?;
            }
            eprintln!("asp fake-server listening on {url}");
            std::future::pending::<()>().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { property } => {
            let desired = property::load(property)?;
            let extensions = desired
                .rooms
                .iter()
                .filter(|r| r.extension.is_some())
                .count();
            let summary = json!({ "valid": true, "rooms": desired.rooms.len(), "extensions": extensions, "trunks": desired.trunks.len(), "address_books": desired.address_books.len() });
            if cli.output == OutputFormat::Json {
                println!("{summary}");
            } else {
                println!(
                    "{}: valid ({} rooms, {extensions} extensions, {} trunks, {} address books)",
                    property.display(),
                    desired.rooms.len(),
                    desired.trunks.len(),
                    desired.address_books.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RoomExtensions { property } => {
            let desired = property::load(property)?;
            let rooms = takeback_sma::target::RoomDirectory::from_extensions(
                desired
                    .rooms
                    .iter()
                    .filter_map(|r| r.extension.as_ref().map(|(_trunk, ext)| ext.as_str())),
            )?;
            let spec = rooms.to_spec();
            if cli.output == OutputFormat::Json {
                println!(
                    "{}",
                    json!({ "room_extensions": spec, "extensions": rooms.len() })
                );
            } else {
                println!("{spec}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            if cli.dry_run {
                return Err(usage(
                    "plan never writes; --dry-run is for the single-call verbs",
                ));
            }
            let desired = property::load(&args.property)?;
            let client = client_for(&cli, cli.region.unwrap_or(desired.region))?;
            let planned = plan_property(
                &client,
                &desired,
                &state_path(args),
                args.prune,
                cli.concurrency,
            )
            .await?;
            print_plan(&planned.plan, cli.output);
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            property: args,
            trunk_timeout,
            poll_interval,
            quiet,
        } => {
            if cli.dry_run {
                return Err(usage("use `asp plan` to see what apply would do"));
            }
            let desired = property::load(&args.property)?;
            let client = client_for(&cli, cli.region.unwrap_or(desired.region))?;
            let options = ApplyOptions {
                concurrency: cli.concurrency,
                trunk_timeout: Duration::from_secs(*trunk_timeout),
                poll_interval: Duration::from_secs(*poll_interval),
                state_path: state_path(args),
                progress: !quiet && cli.output == OutputFormat::Text,
            };
            let (plan, report) = apply_property(&client, &desired, args.prune, &options).await?;
            let summary = |done: Counts| {
                json!({
                    "created": done.created, "updated": done.updated, "deleted": done.deleted,
                    "failed": report.failures.len(), "planned": plan.changes.len(),
                    "seconds": (report.seconds * 1000.0).round() / 1000.0,
                    "requests": client.stats.requests.load(Ordering::Relaxed),
                    "retries": client.stats.retries.load(Ordering::Relaxed),
                    "failures": report.failures,
                })
            };
            if cli.output == OutputFormat::Json {
                println!("{}", summary(report.done));
            } else {
                for change in &plan.changes {
                    println!("{change}");
                }
                for failure in &report.failures {
                    eprintln!("failed: {failure}");
                }
                println!(
                    "Apply: {} created, {} updated, {} deleted, {} failed ({} unchanged) in {:.2} s, {} requests, {} retries.",
                    report.done.created,
                    report.done.updated,
                    report.done.deleted,
                    report.failures.len(),
                    plan.unchanged,
                    report.seconds,
                    client.stats.requests.load(Ordering::Relaxed),
                    client.stats.retries.load(Ordering::Relaxed)
                );
                if !report.failures.is_empty() {
                    println!(
                        "Run `asp apply` again to finish: it reads before it writes, so nothing is created twice."
                    );
                }
            }
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Trunk(TrunkCommand::Settings { trunk_id }) => {
            print_settings(&pbx_settings(trunk_id), cli.output);
            Ok(ExitCode::SUCCESS)
        }
        Command::Trunk(TrunkCommand::Wait {
            trunk_id,
            timeout,
            interval,
        }) => {
            let client = client_for(&cli, cli.region.unwrap_or(Region::Na))?;
            let text = cli.output == OutputFormat::Text;
            let waited = wait_active(
                &client,
                trunk_id,
                Duration::from_secs(*timeout),
                Duration::from_secs(*interval),
                |poll, status| {
                    if text {
                        eprintln!("trunk {trunk_id}: {status} (poll {poll})");
                    }
                },
            )
            .await?;
            let mut settings = pbx_settings(trunk_id);
            settings["status"] = waited.get("status").cloned().unwrap_or(Value::Null);
            print_settings(&settings, cli.output);
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let request = single_request(command)?;
            let client = client_for(&cli, cli.region.unwrap_or(Region::Na))?;
            let body = match request {
                Single::Call(request) => {
                    let answer = client.call(&request).await?;
                    if client.is_dry_run() {
                        return Ok(ExitCode::SUCCESS);
                    }
                    if cli.output == OutputFormat::Text {
                        println!("HTTP {}", answer.status);
                    }
                    answer.body
                }
                Single::List(path) => {
                    if client.is_dry_run() {
                        client
                            .call(&ApiRequest::get(format!(
                                "{path}{}maxResults={}",
                                if path.contains('?') { '&' } else { '?' },
                                wire::PAGE_SIZE
                            )))
                            .await?;
                        return Ok(ExitCode::SUCCESS);
                    }
                    Value::Array(client.list_all(&path).await?)
                }
                Single::Query(path, filters) => {
                    if client.is_dry_run() {
                        client.call(&ApiRequest::post(path, json!({ "filters": filters, "paginationContext": { "maxResults": wire::PAGE_SIZE } }))).await?;
                        return Ok(ExitCode::SUCCESS);
                    }
                    Value::Array(client.query_all(&path, filters).await?)
                }
            };
            match cli.output {
                OutputFormat::Json => println!("{body}"),
                OutputFormat::Text if !body.is_null() => println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                ),
                OutputFormat::Text => {}
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn client_for(
    cli: &Cli,
    region: Region,
) -> Result<AspClient<HyperTransport>, Box<dyn std::error::Error>> {
    let transport = Arc::new(HyperTransport::new()?);
    Ok(client_with(cli, region, transport))
}

pub fn client_with<T: Transport>(cli: &Cli, region: Region, transport: Arc<T>) -> AspClient<T> {
    AspClient::new(
        transport,
        endpoints(cli, region),
        Credentials::from_env().or(cli.secret_credentials.clone().unwrap_or_default()),
        policy(cli),
        cli.dry_run,
    )
}

enum Single {
    Call(ApiRequest),
    List(String),
    Query(String, Value),
}

fn trunk_request_body(body: &TrunkBody) -> Result<Value, Box<dyn std::error::Error>> {
    if !validate::is_valid_fqdn(&body.tls_name) {
        return Err(usage(format!(
            "--tls-name {:?} is not a fully qualified domain name",
            body.tls_name
        )));
    }
    let pem = std::fs::read_to_string(&body.certificate_chain).map_err(|e| {
        usage(format!(
            "--certificate-chain {}: cannot be read: {e}",
            body.certificate_chain.display()
        ))
    })?;
    let chain = validate::parse_certificate_chain(&pem).map_err(|e| {
        usage(format!(
            "--certificate-chain {}: {e}",
            body.certificate_chain.display()
        ))
    })?;
    let peers = body
        .peers
        .iter()
        .map(|p| parse_peer(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    Ok(wire::trunk_body(&property::DesiredTrunk {
        key: String::new(),
        tls_name: body.tls_name.to_ascii_lowercase(),
        certificate_chain: chain,
        peers,
    }))
}

fn check_extension(extension: &str) -> Result<(), Box<dyn std::error::Error>> {
    match validate::undialable_reason(extension, &DialPlan::default()) {
        Some(reason) => Err(usage(reason)),
        None => Ok(()),
    }
}

fn single_request(command: &Command) -> Result<Single, Box<dyn std::error::Error>> {
    use Single::{Call, List, Query};
    let sp = wire::service_provider_path;
    Ok(match command {
        Command::Trunk(c) => match c {
            TrunkCommand::Create(body) => {
                Call(ApiRequest::create(wire::TRUNKS, trunk_request_body(body)?))
            }
            TrunkCommand::Update { trunk_id, body } => Call(ApiRequest::put(
                wire::trunk_path(trunk_id),
                trunk_request_body(body)?,
            )),
            TrunkCommand::Get { trunk_id } => Call(ApiRequest::get(wire::trunk_path(trunk_id))),
            TrunkCommand::List => List(wire::TRUNKS.to_owned()),
            TrunkCommand::Delete { trunk_id } => {
                Call(ApiRequest::delete(wire::trunk_path(trunk_id)))
            }
            TrunkCommand::Wait { .. } | TrunkCommand::Settings { .. } => {
                return Err(usage("handled elsewhere"));
            }
        },
        Command::Extension(c) => match c {
            ExtensionCommand::Map {
                trunk_id,
                extension,
                profile,
            } => {
                check_extension(extension)?;
                Call(ApiRequest::post(
                    wire::extension_path(trunk_id, extension),
                    wire::extension_body(profile),
                ))
            }
            ExtensionCommand::Remap {
                trunk_id,
                extension,
                profile,
            } => {
                check_extension(extension)?;
                Call(ApiRequest::put(
                    wire::extension_path(trunk_id, extension),
                    wire::extension_body(profile),
                ))
            }
            ExtensionCommand::Unmap {
                trunk_id,
                extension,
            } => Call(ApiRequest::delete(wire::extension_path(
                trunk_id, extension,
            ))),
            ExtensionCommand::Get {
                trunk_id,
                extension,
            } => Call(ApiRequest::get(wire::extension_path(trunk_id, extension))),
            ExtensionCommand::List { trunk_id } => List(wire::extensions_path(trunk_id)),
        },
        Command::Profile(c) => match c {
            ProfileCommand::Create { unit, name } => Call(ApiRequest::post(
                wire::PROFILE,
                wire::profile_body(unit, name),
            )),
            ProfileCommand::Get {
                unit: Some(unit), ..
            } => Call(ApiRequest::get(wire::profile_by_unit_path(unit))),
            ProfileCommand::Get { id: Some(id), .. } => {
                Call(ApiRequest::get(wire::profile_path(id)))
            }
            ProfileCommand::Get { .. } => return Err(usage("give --unit or --id")),
            ProfileCommand::Rename { profile_id, name } => Call(ApiRequest::put(
                wire::profile_path(profile_id),
                json!({ "name": name }),
            )),
            ProfileCommand::Delete { profile_id } => {
                Call(ApiRequest::delete(wire::profile_path(profile_id)))
            }
        },
        Command::AddressBook(c) => match c {
            AddressBookCommand::Create { name } => Call(ApiRequest::create(
                wire::ADDRESS_BOOKS,
                json!({ "name": name }),
            )),
            AddressBookCommand::List => List(wire::ADDRESS_BOOKS.to_owned()),
            AddressBookCommand::Get { book_id } => Call(ApiRequest::get(wire::book_path(book_id))),
            AddressBookCommand::Rename { book_id, name } => Call(ApiRequest::put(
                wire::book_path(book_id),
                json!({ "name": name }),
            )),
            AddressBookCommand::Delete { book_id } => {
                Call(ApiRequest::delete(wire::book_path(book_id)))
            }
        },
        Command::Contact(c) => match c {
            ContactCommand::Add {
                book_id,
                name,
                profile,
                phones,
                provider_contact,
            } => {
                let target = match (profile, phones.is_empty(), provider_contact) {
                    (Some(p), true, None) => wire::WireTarget::Profile(p.clone()),
                    (None, false, None) => {
                        if phones.len() > validate::MAX_PHONE_NUMBERS {
                            return Err(usage("at most 3 --phone"));
                        }
                        wire::WireTarget::PhoneNumbers(phones.clone())
                    }
                    (None, true, Some(p)) => wire::WireTarget::Provider(p.clone()),
                    _ => {
                        return Err(usage(
                            "give exactly one of --profile, --phone or --provider-contact",
                        ));
                    }
                };
                Call(ApiRequest::create(
                    wire::contacts_path(book_id),
                    wire::contact_body(name, &target),
                ))
            }
            ContactCommand::List { book_id } => List(wire::contacts_path(book_id)),
            ContactCommand::Get {
                book_id,
                contact_id,
            } => Call(ApiRequest::get(wire::contact_path(book_id, contact_id))),
            ContactCommand::Delete {
                book_id,
                contact_id,
            } => Call(ApiRequest::delete(wire::contact_path(book_id, contact_id))),
        },
        Command::UnitAssociation(c) => match c {
            UnitAssociationCommand::Add { book_id, unit_id } => Call(ApiRequest::post(
                wire::unit_associations_path(book_id),
                json!({ "unitId": unit_id }),
            )),
            UnitAssociationCommand::List { book_id } => List(wire::unit_associations_path(book_id)),
            UnitAssociationCommand::Remove { book_id, unit_id } => {
                Call(ApiRequest::delete(format!(
                    "{}?unitId={}",
                    wire::unit_associations_path(book_id),
                    wire::enc(unit_id)
                )))
            }
        },
        Command::Skill(c) => match c {
            SkillCommand::Enable {
                skill_id,
                unit,
                stage,
            } => Call(ApiRequest::post(
                wire::skill_enablements_path(skill_id),
                json!({ "unitId": unit, "stage": stage }),
            )),
            SkillCommand::Disable {
                skill_id,
                unit,
                stage,
            } => Call(ApiRequest::delete(format!(
                "{}?unitId={}&stage={}",
                wire::skill_enablements_path(skill_id),
                wire::enc(unit),
                wire::enc(stage)
            ))),
            SkillCommand::List { unit } => List(wire::unit_skills_path(unit)),
        },
        Command::ServiceProvider(c) => match c {
            ServiceProviderCommand::Create {
                logical_id,
                display_name,
                locale,
            } => Call(ApiRequest::create(
                wire::SERVICE_PROVIDERS,
                wire::service_provider_body(logical_id, locale, display_name),
            )),
            ServiceProviderCommand::Get { provider_id } => Call(ApiRequest::get(sp(provider_id))),
            ServiceProviderCommand::Delete { provider_id } => {
                Call(ApiRequest::delete(sp(provider_id)))
            }
            ServiceProviderCommand::MapSkill {
                provider_id,
                skill_id,
            } => Call(ApiRequest::post(
                wire::network_path(provider_id),
                wire::network_body(skill_id),
            )),
            ServiceProviderCommand::GetNetwork { provider_id } => {
                Call(ApiRequest::get(wire::network_path(provider_id)))
            }
            ServiceProviderCommand::Associate {
                provider_id,
                external_user,
                profile,
            } => Call(ApiRequest::post(
                wire::external_users_path(provider_id),
                wire::account_association_body(external_user, profile),
            )),
            ServiceProviderCommand::Dissociate {
                provider_id,
                external_user,
            } => Call(
                ApiRequest::delete(wire::external_users_path(provider_id))
                    .with_body(json!({ "externalUserId": external_user })),
            ),
            ServiceProviderCommand::Query {
                provider_id,
                external_users,
            } => Query(
                format!("{}/query", wire::external_users_path(provider_id)),
                json!({ "externalUserIds": external_users }),
            ),
        },
        _ => return Err(usage("not a single-call verb")),
    })
}

/// For tests: parse arguments as the binary would.
pub fn parse_args<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString> + Clone>(
    args: I,
) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

/// For tests: the property file's directory (certificate paths are relative to it).
pub fn property_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
