//! Table definitions shared by the stores, the local setup (`create_table`) and the test that
//! checks `template.yaml` declares the same keys, indexes and TTL attributes.

/// A DynamoDB key attribute; every key in this project is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub partition_key: KeyAttr,
    pub sort_key: Option<KeyAttr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// Logical id of the table resource in `template.yaml`.
    pub logical_id: &'static str,
    /// Environment variable through which functions receive the physical table name.
    pub env_var: &'static str,
    pub partition_key: KeyAttr,
    pub sort_key: Option<KeyAttr>,
    pub indexes: &'static [IndexDef],
    /// Attribute holding an epoch-seconds expiry that DynamoDB TTL deletes by.
    pub ttl_attribute: Option<&'static str>,
}

/// Rolling-DNIS pairs, with the seed's key names so its users recognise them.
pub const PAIRS: TableDef = TableDef {
    logical_id: "PairsTable",
    env_var: "PAIRS_TABLE",
    partition_key: KeyAttr("sma_number"),
    sort_key: Some(KeyAttr("connect_number")),
    indexes: &[IndexDef {
        name: "in_use",
        partition_key: KeyAttr("in_use"),
        sort_key: None,
    }],
    // Pairs are inventory: they must never expire.
    ttl_attribute: None,
};

/// Per-SMA-transaction records: which pair a transaction claimed (claim idempotency) and the
/// transfer intent recorded by the Connect transfer function.
pub const CALLS: TableDef = TableDef {
    logical_id: "CallsTable",
    env_var: "CALLS_TABLE",
    partition_key: KeyAttr("transaction_id"),
    sort_key: None,
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

/// Alexa CallSignaling sessions keyed by the Alexa `sessionId`.
pub const SIGNALING_SESSIONS: TableDef = TableDef {
    logical_id: "SignalingSessionsTable",
    env_var: "SIGNALING_SESSIONS_TABLE",
    partition_key: KeyAttr("session_id"),
    sort_key: None,
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

/// Login with Amazon tokens from account linking.
pub const TOKENS: TableDef = TableDef {
    logical_id: "TokensTable",
    env_var: "TOKENS_TABLE",
    partition_key: KeyAttr("token_id"),
    sort_key: None,
    indexes: &[],
    ttl_attribute: None,
};

pub const ALL: &[TableDef] = &[PAIRS, CALLS, SIGNALING_SESSIONS, TOKENS];

/// What [`create_table`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    AlreadyExisted,
}

/// Creates `def` as `physical_name` the way `template.yaml` declares it: on-demand billing, every
/// index projecting ALL attributes, TTL on `ttl_attribute`. Waits until the table and its
/// indexes are ACTIVE. An existing table counts as success (the seed tool can be re-run).
/// Used by the tests, the seed tool and the emulator against DynamoDB Local.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    def: &TableDef,
    physical_name: &str,
) -> Result<CreateOutcome, takeback_common::StoreError> {
    use crate::error::map_sdk_error;
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::create_table::CreateTableError;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    use takeback_common::StoreError;

    let build_err = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Other(Box::new(e));
    let key_schema = |pk: KeyAttr, sk: Option<KeyAttr>| -> Result<Vec<_>, StoreError> {
        let mut keys = vec![
            KeySchemaElement::builder()
                .attribute_name(pk.0)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build_err)?,
        ];
        if let Some(sk) = sk {
            keys.push(
                KeySchemaElement::builder()
                    .attribute_name(sk.0)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(build_err)?,
            );
        }
        Ok(keys)
    };

    let mut attrs: Vec<&str> = Vec::new();
    for a in [Some(def.partition_key), def.sort_key]
        .into_iter()
        .flatten()
        .chain(
            def.indexes
                .iter()
                .flat_map(|i| [Some(i.partition_key), i.sort_key])
                .flatten(),
        )
    {
        if !attrs.contains(&a.0) {
            attrs.push(a.0);
        }
    }
    let mut req = client
        .create_table()
        .table_name(physical_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(def.partition_key, def.sort_key)?));
    for a in attrs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)?,
        );
    }
    for index in def.indexes {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, index.sort_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(build_err)?,
        );
    }
    let outcome = match req.send().await {
        Ok(_) => CreateOutcome::Created,
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateTableError::ResourceInUseException(_)) =>
        {
            CreateOutcome::AlreadyExisted
        }
        Err(e) => return Err(map_sdk_error(e)),
    };

    // Wait for ACTIVE (instant on DynamoDB Local, up to a minute or so in AWS).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let out = client
            .describe_table()
            .table_name(physical_name)
            .send()
            .await
            .map_err(map_sdk_error)?;
        let table = out.table();
        let active = table.and_then(|t| t.table_status())
            == Some(&aws_sdk_dynamodb::types::TableStatus::Active)
            && table.is_some_and(|t| {
                t.global_secondary_indexes().iter().all(|i| {
                    i.index_status() == Some(&aws_sdk_dynamodb::types::IndexStatus::Active)
                })
            });
        if active {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(StoreError::Corrupt(format!(
                "table {physical_name} did not become ACTIVE"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    if outcome == CreateOutcome::Created
        && let Some(ttl) = def.ttl_attribute
    {
        client
            .update_time_to_live()
            .table_name(physical_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(map_sdk_error)?;
    }
    Ok(outcome)
}

/// For tests against DynamoDB Local: whether `AWS_ENDPOINT_URL_DYNAMODB` is set. When it is not,
/// prints a SKIP line naming the test and how to start the server (CI always sets it).
pub fn dynamodb_local_configured(test: &str) -> bool {
    let configured = std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some();
    if !configured {
        eprintln!(
            "SKIP {test}: AWS_ENDPOINT_URL_DYNAMODB is not set \
             (infra/dynamodb-local.sh start && eval \"$(infra/dynamodb-local.sh env)\")"
        );
    }
    configured
}
