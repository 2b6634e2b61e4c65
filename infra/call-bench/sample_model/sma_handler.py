"""A model of the sample's SIP media application handler, for call-bench.

Written for this benchmark from the sample's published description (it is not the sample's
code): the same DynamoDB requests, table attributes and index as the original's rolling-DNIS
claim, on the tables this project deploys.

- NEW_INBOUND_CALL: Query the pairs table's `in_use` index for `in_use = "false"` with
  Limit=1, claim the pair found with a conditional UpdateItem (`attribute_not_exists(in_use)
  OR in_use = :false`), and query again whenever the condition fails; an empty query means
  every pair is taken (busy). The answer bridges the caller to the pair's Connect number with
  the pair's SMA number as caller id, and keeps the pair in the transaction attributes.
- HANGUP: the pair named in the transaction attributes is set back to `in_use = "false"`
  (unconditionally, as the sample frees it).

The boto3 client is created at module level, during the function's init, as the sample does,
and keeps botocore's default retry configuration (legacy mode; for DynamoDB 10 attempts with
exponential backoff from 50 ms). A DynamoDB error that outlives those retries propagates: the
invocation fails, as in the sample.
"""

import os
import time

import boto3

INTEGRATION_TABLE = os.environ["INTEGRATION_TABLE"]
MESSAGE_BUSY = os.environ.get("MESSAGE_BUSY", "All our lines are busy. Please call again later.")
CONNECT_CALL_TIMEOUT_SECONDS = 30

dynamodb = boto3.client("dynamodb")


def find_free_pair():
    response = dynamodb.query(
        TableName=INTEGRATION_TABLE,
        IndexName="in_use",
        KeyConditionExpression="in_use = :false",
        ExpressionAttributeValues={":false": {"S": "false"}},
        Limit=1,
    )
    items = response.get("Items", [])
    if not items:
        return None
    return items[0]["sma_number"]["S"], items[0]["connect_number"]["S"]


def claim_pair(transaction_id, original_calling_number):
    """The claimed (sma_number, connect_number), or None when no pair is free."""
    while True:
        pair = find_free_pair()
        if pair is None:
            return None
        sma_number, connect_number = pair
        try:
            dynamodb.update_item(
                TableName=INTEGRATION_TABLE,
                Key={"sma_number": {"S": sma_number}, "connect_number": {"S": connect_number}},
                UpdateExpression="SET transaction_id = :transaction_id, "
                "call_timestamp = :current_timestamp, in_use = :true, "
                "original_calling_number = :original_calling_number",
                ConditionExpression="attribute_not_exists(in_use) OR in_use = :false",
                ExpressionAttributeValues={
                    ":transaction_id": {"S": transaction_id},
                    ":original_calling_number": {"S": original_calling_number},
                    ":current_timestamp": {"N": str(int(time.time() * 1000))},
                    ":true": {"S": "true"},
                    ":false": {"S": "false"},
                },
            )
            return pair
        except dynamodb.exceptions.ConditionalCheckFailedException:
            # Another call took this pair between our query and our write: look again.
            continue


def release_pair(sma_number, connect_number):
    dynamodb.update_item(
        TableName=INTEGRATION_TABLE,
        Key={"sma_number": {"S": sma_number}, "connect_number": {"S": connect_number}},
        UpdateExpression="SET in_use = :false",
        ExpressionAttributeValues={":false": {"S": "false"}},
    )


def call_and_bridge_to_connect(sma_number, connect_number):
    return {
        "Type": "CallAndBridge",
        "Parameters": {
            "CallTimeoutSeconds": CONNECT_CALL_TIMEOUT_SECONDS,
            "CallerIdNumber": sma_number,
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": connect_number}],
        },
    }


def speak(text, call_id):
    return {
        "Type": "Speak",
        "Parameters": {
            "Text": text,
            "CallId": call_id,
            "Engine": "neural",
            "LanguageCode": "en-US",
            "TextType": "text",
            "VoiceId": "Joanna",
        },
    }


def hangup(call_id):
    return {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "CallId": call_id}}


def answer(actions, attributes):
    return {"SchemaVersion": "1.0", "Actions": actions, "TransactionAttributes": attributes}


def handler(event, context):
    event_type = event["InvocationEventType"]
    details = event["CallDetails"]
    transaction_id = details["TransactionId"]
    attributes = dict(details.get("TransactionAttributes") or {})
    legs = details["Participants"]

    if event_type == "NEW_INBOUND_CALL":
        leg_a = legs[0]
        pair = claim_pair(transaction_id, leg_a["From"])
        if pair is None:
            return answer([speak(MESSAGE_BUSY, leg_a["CallId"]), hangup(leg_a["CallId"])], attributes)
        sma_number, connect_number = pair
        attributes.update(
            {
                "transaction_id": transaction_id,
                "sma_number": sma_number,
                "connect_number": connect_number,
                "original_calling_number": leg_a["From"],
                "active_call_to_connect": "true",
            }
        )
        return answer([call_and_bridge_to_connect(sma_number, connect_number)], attributes)

    if event_type == "HANGUP":
        if attributes.get("active_call_to_connect") == "true":
            release_pair(attributes["sma_number"], attributes["connect_number"])
            attributes["active_call_to_connect"] = "false"
        still_up = [leg["CallId"] for leg in legs if leg.get("Status") == "Connected"]
        return answer([hangup(call_id) for call_id in still_up], attributes)

    return answer([], attributes)
