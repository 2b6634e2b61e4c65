//! Seeding rolling-DNIS pairs: any number of them, from a pairs file or the cross product of the
//! SMA and Connect number lists, at deploy time or later (adding numbers needs no redeploy).
//!
//! `BatchWriteItem` cannot be conditional, and a put would overwrite (free!) a pair in use. So
//! the existing keys are read first (`BatchGetItem`, consistent) and only missing pairs are
//! written: re-running the seed adds new pairs and leaves every existing pair, held or free,
//! untouched. A pair that does not exist cannot be held (claims require the item to exist), so
//! the read-then-write gap is harmless — except against a second seeder running at the same
//! moment, which could re-put a pair the first one just added and a caller just claimed: run one
//! seeder at a time.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use serde::Deserialize;

use takeback_pairs::{PairKey, StoreError};

use crate::error::map_sdk_error;
use crate::pairs::{IN_USE_FALSE, attr, backoff, pair_key_item, pool_key_item};

/// `BatchWriteItem` takes at most 25 items, `BatchGetItem` at most 100 keys.
pub const WRITE_BATCH: usize = 25;
pub const READ_BATCH: usize = 100;
/// Rounds of `UnprocessedItems`/`UnprocessedKeys` retries before giving up.
const MAX_BATCH_ROUNDS: u32 = 10;

/// The pairs file: explicit `pairs`, and/or `sma_numbers` × `connect_numbers`.
///
/// ```json
/// { "pairs": [ { "sma_number": "+18005557777", "connect_number": "+18005551111" } ],
///   "sma_numbers": ["+18005558888"], "connect_numbers": ["+18005552222"] }
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PairsFile {
    #[serde(default)]
    pub pairs: Vec<PairEntry>,
    #[serde(default)]
    pub sma_numbers: Vec<String>,
    #[serde(default)]
    pub connect_numbers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PairEntry {
    pub sma_number: String,
    pub connect_number: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PairsError {
    #[error("not an E.164 number: {0:?}")]
    NotE164(String),
    #[error("sma_numbers and connect_numbers must both be given (or neither)")]
    HalfCrossProduct,
}

impl PairsFile {
    /// Every pair the file describes, validated and without duplicates, in a stable order.
    pub fn pairs(&self) -> Result<Vec<PairKey>, PairsError> {
        if self.sma_numbers.is_empty() != self.connect_numbers.is_empty() {
            return Err(PairsError::HalfCrossProduct);
        }
        let explicit = self.pairs.iter().map(|p| PairKey {
            sma_number: p.sma_number.clone(),
            connect_number: p.connect_number.clone(),
        });
        let all: Vec<PairKey> = explicit
            .chain(cross_product(&self.sma_numbers, &self.connect_numbers))
            .collect();
        for p in &all {
            validate_e164(&p.sma_number)?;
            validate_e164(&p.connect_number)?;
        }
        Ok(dedup(all))
    }
}

/// Every SMA number with every Connect number (the seed's "rolling DNIS" matrix).
pub fn cross_product(sma_numbers: &[String], connect_numbers: &[String]) -> Vec<PairKey> {
    sma_numbers
        .iter()
        .flat_map(|s| {
            connect_numbers.iter().map(move |c| PairKey {
                sma_number: s.clone(),
                connect_number: c.clone(),
            })
        })
        .collect()
}

/// `+` then 2 to 15 digits, the first not 0.
pub fn validate_e164(number: &str) -> Result<(), PairsError> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(PairsError::NotE164(number.to_owned()))
    }
}

fn dedup(pairs: Vec<PairKey>) -> Vec<PairKey> {
    let mut seen = HashSet::new();
    pairs
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Distinct pairs asked for.
    pub requested: usize,
    /// Pairs written (they did not exist).
    pub added: usize,
    /// Pairs already in the table, left untouched (free or in use).
    pub existing: usize,
    /// `BatchWriteItem` calls made (retries of unprocessed items included).
    pub write_batches: usize,
}

/// Adds the pairs that `table` does not hold yet, as free pairs, in batches of 25 with
/// unprocessed-item retries.
pub async fn seed_pairs(
    client: &Client,
    table: &str,
    pairs: &[PairKey],
) -> Result<SeedReport, StoreError> {
    let pairs = dedup(pairs.to_vec());
    let existing = existing_pairs(client, table, &pairs).await?;
    let missing: Vec<&PairKey> = pairs.iter().filter(|p| !existing.contains(*p)).collect();
    // Deal the new pairs slot numbers from the pool item (concurrent seeders get disjoint
    // ranges); claims use them to spread simultaneous claimers (see `ClaimConfig::use_ticket`).
    let first_slot = if missing.is_empty() {
        0
    } else {
        deal_slots(client, table, missing.len()).await?
    };
    let mut report = SeedReport {
        requested: pairs.len(),
        added: 0,
        existing: pairs.len() - missing.len(),
        write_batches: 0,
    };
    for (chunk_no, chunk) in missing.chunks(WRITE_BATCH).enumerate() {
        let mut requests = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut item = pair_key_item(p);
                item.insert(
                    attr::IN_USE.to_owned(),
                    AttributeValue::S(IN_USE_FALSE.to_owned()),
                );
                let slot = first_slot + (chunk_no * WRITE_BATCH + i) as u64;
                item.insert(attr::SLOT.to_owned(), AttributeValue::N(slot.to_string()));
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| StoreError::Other(Box::new(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut round = 0;
        while !requests.is_empty() {
            if round > 0 {
                tokio::time::sleep(backoff(round)).await;
            }
            if round >= MAX_BATCH_ROUNDS {
                return Err(StoreError::Corrupt(format!(
                    "{} items still unprocessed after {MAX_BATCH_ROUNDS} batch rounds",
                    requests.len()
                )));
            }
            report.write_batches += 1;
            let out = client
                .batch_write_item()
                .request_items(table, requests.clone())
                .send()
                .await
                .map_err(map_sdk_error)?;
            requests = out
                .unprocessed_items()
                .and_then(|u| u.get(table))
                .cloned()
                .unwrap_or_default();
            round += 1;
        }
        report.added += chunk.len();
    }
    Ok(report)
}

/// Reserves `count` slot numbers on the pool item; returns the first.
async fn deal_slots(client: &Client, table: &str, count: usize) -> Result<u64, StoreError> {
    let out = client
        .update_item()
        .table_name(table)
        .set_key(Some(pool_key_item()))
        .update_expression("ADD #n :k")
        .expression_attribute_names("#n", attr::PAIR_SLOTS)
        .expression_attribute_values(":k", AttributeValue::N(count.to_string()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(map_sdk_error)?;
    let total = out
        .attributes()
        .and_then(|a| a.get(attr::PAIR_SLOTS))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| StoreError::Corrupt("pool item returned no slot count".into()))?;
    Ok(total.saturating_sub(count as u64))
}

/// Which of `pairs` exist in `table` (consistent `BatchGetItem`, 100 keys at a time).
async fn existing_pairs(
    client: &Client,
    table: &str,
    pairs: &[PairKey],
) -> Result<HashSet<PairKey>, StoreError> {
    let mut found = HashSet::new();
    for chunk in pairs.chunks(READ_BATCH) {
        let mut keys: Vec<HashMap<String, AttributeValue>> =
            chunk.iter().map(pair_key_item).collect();
        let mut round = 0;
        while !keys.is_empty() {
            if round > 0 {
                tokio::time::sleep(backoff(round)).await;
            }
            if round >= MAX_BATCH_ROUNDS {
                return Err(StoreError::Corrupt(format!(
                    "{} keys still unprocessed after {MAX_BATCH_ROUNDS} batch rounds",
                    keys.len()
                )));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("#s, #c")
                .expression_attribute_names("#s", attr::SMA_NUMBER)
                .expression_attribute_names("#c", attr::CONNECT_NUMBER)
                .build()
                .map_err(|e| StoreError::Other(Box::new(e)))?;
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(map_sdk_error)?;
            for item in out
                .responses()
                .and_then(|r| r.get(table))
                .into_iter()
                .flatten()
            {
                if let (Some(AttributeValue::S(s)), Some(AttributeValue::S(c))) =
                    (item.get(attr::SMA_NUMBER), item.get(attr::CONNECT_NUMBER))
                {
                    found.insert(PairKey {
                        sma_number: s.clone(),
                        connect_number: c.clone(),
                    });
                }
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            round += 1;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cross_product_is_every_combination() {
        let p = cross_product(
            &nums(&["+1800555777", "+1800555888"]),
            &nums(&["+1800555111"]),
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].sma_number, "+1800555888");
    }

    #[test]
    fn file_combines_and_dedups() {
        let file: PairsFile = serde_json::from_str(
            r#"{"pairs":[{"sma_number":"+18005557777","connect_number":"+18005551111"}],
                "sma_numbers":["+18005557777","+18005558888"],"connect_numbers":["+18005551111"]}"#,
        )
        .unwrap_or_default();
        assert_eq!(file.pairs().map(|p| p.len()), Ok(2));
    }

    #[test]
    fn rejects_bad_numbers_and_half_products() {
        let bad = PairsFile {
            sma_numbers: nums(&["18005557777"]),
            connect_numbers: nums(&["+18005551111"]),
            ..PairsFile::default()
        };
        assert!(matches!(bad.pairs(), Err(PairsError::NotE164(_))));
        let half = PairsFile {
            sma_numbers: nums(&["+18005557777"]),
            ..PairsFile::default()
        };
        assert_eq!(half.pairs(), Err(PairsError::HalfCrossProduct));
        assert!(validate_e164("+0123").is_err());
        assert!(validate_e164("+12a4").is_err());
        assert!(validate_e164("+18005551111").is_ok());
    }
}
