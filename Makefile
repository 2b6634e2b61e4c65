# Take back and transfer: the verbs. `make help` lists them.
#
# Two commands on a fresh machine:   make demo   (the whole call flow, locally)
#                                    make test   (every test, against a DynamoDB Local it starts)
# Tools (cargo-lambda, SAM CLI, cfn-lint, checkov, DynamoDB Local) are pinned and installed into
# .tools/ by infra/tools.sh on first use; nothing is installed system-wide except the Rust
# aarch64 target (rustup).

# ---- variables -------------------------------------------------------------------------------
SHELL        := bash
.SHELLFLAGS  := -eu -o pipefail -c
ROOT         := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

CARGO        ?= cargo
REGION       ?= us-east-1
FUNCTIONS    ?= sma-handler connect-lookup connect-transfer call-signaling signaling-api
TEST_FLAGS   ?=
CLIPPY_FLAGS ?= -D warnings
SAM_DEPLOY_FLAGS ?= --guided

# Which function and which events/ file `make invoke` uses: FN=sma-handler EVENT=sma-new-inbound-call-basic
FN           ?= sma-handler
EVENT        ?=
# Local, non-secret settings for every function under `make watch` (tables as `make seed` names
# them, the emulator's SMA id, loopback URLs); the DynamoDB Local endpoint comes from the env.
WATCH_ENV    ?= infra/local.env
WATCH_FLAGS  ?=
# Where watched functions send UpdateSipMediaApplicationCall: the emulator's fake Chime SDK Voice
# API (never real AWS). Run the emulator with the same AWS_ENDPOINT_URL_CHIME_SDK_VOICE.
CHIME_ENDPOINT ?= http://127.0.0.1:9200
LAMBDA_PORT  ?= 9000

# Sizes of the abuse runs (`make fuzz`, `make soak`); the scripts read the rest of their settings
# (FUZZ_SEED, SOAK_SEED, ..., FUZZ_PROFILE/SOAK_PROFILE) from the environment.
FUZZ_INPUTS  ?= 200000
SOAK_CALLS   ?= 10000

# Local tables (created and seeded by `make seed` in DynamoDB Local).
PAIRS_TABLE  ?= takeback-pairs
CALLS_TABLE  ?= takeback-calls
PAIRS_FILE   ?= infra/pairs.example.json
SEED_FLAGS   ?= --create-tables --pairs-file $(PAIRS_FILE)

DDB          := $(ROOT)/infra/dynamodb-local.sh
TOOLS        := $(ROOT)/infra/tools.sh
# One DynamoDB Local per `make test` run (named after the recipe shell's PID), so parallel runs
# never stop each other's server.
TEST_DB       = test-$$$$
LOCAL_DB     ?= default

# Project-local tools first on PATH: SAM's cargo-lambda builder needs the venv's python3 (it
# imports ziglang). checkov lives in its own venv (its boto3 pin conflicts with SAM CLI's).
export PATH  := $(ROOT)/.tools/venv/bin:$(PATH):$(ROOT)/.tools/checkov-venv/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= $(REGION)

TOOLS_STAMP  := $(ROOT)/.tools/venv/.pins

.DEFAULT_GOAL := help

.PHONY: help tools build test lint fmt clippy local-db-up local-db-down local-db-env seed watch \
        invoke lambda-build sizes sam-build validate deploy demo scenarios fuzz soak bench-claims bench-calls bench \
        clean-local provision-demo flow

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

# ---- tools -----------------------------------------------------------------------------------
tools: ## install the pinned tools into .tools/ (idempotent; ~2 min the first time)
	@$(TOOLS) install

$(TOOLS_STAMP):
	@$(TOOLS) install

# ---- build, test, lint -----------------------------------------------------------------------
build: ## debug build of the whole workspace
	$(CARGO) build --workspace --all-targets

test: ## all tests, against a DynamoDB Local this target starts and always stops
	@$(DDB) install >/dev/null
	@name="$(TEST_DB)"; \
	trap '$(DDB) stop "$$name" >/dev/null; rm -f "$(ROOT)/.local/dynamodb-local/$$name.log"' EXIT; \
	$(DDB) start "$$name" >/dev/null; \
	eval "$$($(DDB) env "$$name")"; \
	echo "make test: DynamoDB Local at $$AWS_ENDPOINT_URL_DYNAMODB"; \
	$(CARGO) test --workspace $(TEST_FLAGS)

lint: fmt clippy ## rustfmt check + clippy -D warnings

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- $(CLIPPY_FLAGS)

# ---- local stack -----------------------------------------------------------------------------
local-db-up: ## start DynamoDB Local (kept running); prints the env to export
	@$(DDB) start $(LOCAL_DB) >/dev/null
	@$(DDB) status $(LOCAL_DB)
	@echo 'use it:  eval "$$(infra/dynamodb-local.sh env $(LOCAL_DB))"'

local-db-down: ## stop DynamoDB Local
	@$(DDB) stop $(LOCAL_DB)

local-db-env:
	@$(DDB) env $(LOCAL_DB)

seed: ## create the local tables and seed the pairs of PAIRS_FILE (infra/pairs.example.json)
	@$(DDB) status $(LOCAL_DB) >/dev/null || $(MAKE) --no-print-directory local-db-up
	@eval "$$($(DDB) env $(LOCAL_DB))"; \
	$(CARGO) run -q -p seed-pairs -- --pairs-table $(PAIRS_TABLE) --calls-table $(CALLS_TABLE) $(SEED_FLAGS)

watch: $(TOOLS_STAMP) ## cargo lambda watch: every function on http://127.0.0.1:$(LAMBDA_PORT), against the local DynamoDB
	@$(DDB) status $(LOCAL_DB) >/dev/null || $(MAKE) --no-print-directory local-db-up
	@eval "$$($(DDB) env $(LOCAL_DB))"; \
	$(CARGO) lambda watch -P $(LAMBDA_PORT) --env-file $(WATCH_ENV) --env-var PAIRS_TABLE=$(PAIRS_TABLE),CALLS_TABLE=$(CALLS_TABLE),AWS_ENDPOINT_URL_CHIME_SDK_VOICE=$(CHIME_ENDPOINT) $(WATCH_FLAGS)

invoke: $(TOOLS_STAMP) ## send an events/ file to a watched function: make invoke FN=sma-handler EVENT=sma-new-inbound-call-basic
	@test -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=<events/ file, with or without .json>"; ls events; exit 2; }
	@f="$(EVENT)"; [ -f "$$f" ] || f="events/$(EVENT)"; [ -f "$$f" ] || f="events/$(EVENT).json"; \
	[ -f "$$f" ] || { echo "no such event file: $(EVENT)"; exit 2; }; \
	$(CARGO) lambda invoke -P $(LAMBDA_PORT) $(FN) --data-file "$$f"

# ---- Lambda artifacts and AWS ----------------------------------------------------------------
# One function at a time, as `sam build` does: cargo unifies dependency features over the packages
# of one invocation, so a joint `-p a -p b ...` build compiles dependencies differently from the
# per-function builds SAM runs and `sam build` would then rebuild them (~4 min). Built this way,
# the bootstraps are exactly the deployed ones and a following `sam build` reuses them.
lambda-build: $(TOOLS_STAMP) ## release arm64 bootstraps (zipped) of every function in target/lambda/
	@for f in $(FUNCTIONS); do \
	  echo "cargo lambda build --release --arm64 --output-format zip -p $$f"; \
	  $(CARGO) lambda build --release --arm64 --output-format zip -p $$f; \
	done
	@$(MAKE) --no-print-directory sizes

sizes: ## print each function's bootstrap.zip size
	@python3 "$(ROOT)/infra/lambda-sizes.py" $(FUNCTIONS)

sam-build: $(TOOLS_STAMP) ## sam build: every function through cargo-lambda into .aws-sam/
	sam build

validate: $(TOOLS_STAMP) ## cfn-lint, sam validate --lint, checkov on template.yaml
	cfn-lint template.yaml
	sam validate --lint --region $(REGION)
	checkov --skip-download --quiet --compact -f template.yaml

deploy: sam-build ## sam deploy (--guided the first time; SAM_DEPLOY_FLAGS= to reuse samconfig.toml)
	sam deploy $(SAM_DEPLOY_FLAGS)

flow: ## STACK=name: render infra/contact-flow.json with the stack's ARNs, create/update it in Connect (FLOW_FLAGS=--dry-run to print only)
	@test -n "$(STACK)" || { echo "make flow: set STACK=<the deployed stack's name>" >&2; exit 2; }
	$(CARGO) run -q -p flow -- --stack "$(STACK)" $(FLOW_FLAGS)

# ---- emulator and benchmarks -----------------------------------------------------------------
# The emulator plays the SMA, Connect (running infra/contact-flow.json) and the Chime SDK Voice
# API against the real handlers and a DynamoDB Local that the scripts start and stop by PID.
demo: ## the main job, locally: calls through the emulator against DynamoDB Local
	infra/demo.sh

provision-demo: ## asp plan + apply of infra/property.example.toml against the fake ASP APIs; JSON figures last
	infra/asp/demo.sh

scenarios: ## every emulator scenario (events/scenarios/), DynamoDB Local and in-memory store
	infra/scenarios.sh

fuzz: ## structure-aware fuzzer over the SMA, Connect and Alexa entry points (FUZZ_INPUTS=200000); JSON figures last
	FUZZ_INPUTS=$(FUZZ_INPUTS) infra/fuzz.sh

soak: ## SOAK_CALLS=10000 calls through the handlers and DynamoDB Local behind a fault proxy; invariants as JSON last
	SOAK_CALLS=$(SOAK_CALLS) infra/soak.sh

bench-claims: ## concurrent pair-claim benchmark against DynamoDB Local (spread vs the seed's Limit=1)
	infra/bench-claims.sh

bench-calls: ## sma-handler and a Python model of the sample as Lambda processes: cold, warm, throttled; JSON last
	infra/bench-calls.sh

bench: ## criterion benches of the SMA crate (parse + decide + serialize)
	$(CARGO) bench -p takeback-sma

clean-local: ## stop the local DynamoDB and remove .local/ state
	@$(DDB) stop $(LOCAL_DB) >/dev/null || true
	rm -rf .local .aws-sam
