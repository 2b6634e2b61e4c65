"""A minimal Lambda custom-runtime loop for the sample's model (call-bench).

It stands in for the managed Python runtime's loop: import the handler module (the function's
init), then forever ask the Runtime API for the next event, call the handler and post its
result or its error. Usage: runtime.py MODULE.FUNCTION (or _HANDLER), with
AWS_LAMBDA_RUNTIME_API set. Only the standard library: urllib, as the managed runtime's own
start-up is not what is being compared.
"""

import importlib
import json
import os
import sys
import time
import traceback
import urllib.request

API = "http://{}/2018-06-01/runtime".format(os.environ.get("AWS_LAMBDA_RUNTIME_API", ""))


def post(path, body):
    request = urllib.request.Request(
        API + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


def error_body(error):
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(type(error), error, error.__traceback__),
    }


class Context:
    """The part of the Lambda context object a handler commonly reads."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0") or 0)

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def load_handler(spec):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError("handler {!r} is not MODULE.FUNCTION".format(spec))
    return getattr(importlib.import_module(module_name), function_name)


def main():
    spec = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, task_root)
    try:
        handler = load_handler(spec)
    except Exception as error:  # the managed runtime reports any import failure the same way
        post("/init/error", error_body(error))
        raise
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as answer:
            headers = answer.headers
            event = json.loads(answer.read())
        context = Context(headers)
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        try:
            result = handler(event, context)
        except Exception as error:
            post("/invocation/{}/error".format(context.aws_request_id), error_body(error))
            continue
        post("/invocation/{}/response".format(context.aws_request_id), result)


if __name__ == "__main__":
    main()
