//! Attribute-value constructors every store here writes with.

use aws_sdk_dynamodb::types::AttributeValue;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute (DynamoDB carries numbers as decimal text).
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
