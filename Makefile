# Tern — the two commands a newcomer needs: `make run` and `make test`.
# Both install what they need when it is missing (Debian/Ubuntu: apt-get; Python: pip).

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
# Tests and the server share one build profile: RocksDB's C++ takes minutes per profile.
PROFILE := --release
APT_BUILD := libclang-dev
# swaks needs Net::SSLeay and IO::Socket::SSL for STARTTLS (recommends, not depends).
# Dovecot's ImapTest (tests/test_imaptest.py), built from the pinned source beside the repo.
IMAPTEST_DIR ?= /var/tmp/imaptest
IMAPTEST_BUILD ?= ../shared/tools/imaptest/build.sh
APT_TEST := swaks libnet-ssleay-perl libio-socket-ssl-perl isync haproxy unbound postfix openssl

.PHONY: run build test unit e2e lint check-deps deps test-deps lint-deps bench fuzz clean-data

run: deps
	$(CARGO) run $(PROFILE) -p tern -- serve --dev

build: deps
	$(CARGO) build $(PROFILE) --workspace

test: deps test-deps build check-deps unit e2e

unit:
	$(CARGO) test $(PROFILE) --workspace

e2e:
	TERN_BIN="$$($(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tern" \
		IMAPTEST_DIR=$(IMAPTEST_DIR) $(PYTHON) -m pytest -q tests cluster

lint: check-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(PROFILE) --workspace --all-targets -- -D warnings

# The crate map of ARCHITECTURE.md holds, and no crate declares a dependency it does not use
# (cargo-machete reads the sources; neither check builds anything).
check-deps: lint-deps
	./scripts/check-crate-map
	$(CARGO) machete

bench: build
	./scripts/bench

# Coverage-guided fuzzing of every target (libFuzzer via cargo-fuzz on nightly, its own target
# dir), FUZZ_SECS seconds each; see benches/README.md. `make test` needs none of it: `unit`
# replays fuzz/corpus and fuzz/regressions through crates/fuzz in the normal build.
FUZZ_SECS ?= 60
fuzz: deps
	./benches/fuzz $(FUZZ_SECS)

# --- installation of missing tools -------------------------------------------------------
deps:
	@./scripts/ensure-apt $(APT_BUILD)

lint-deps:
	@./scripts/ensure-cargo-tool cargo-machete 0.9.2

test-deps:
	@./scripts/ensure-apt $(APT_TEST)
	@$(PYTHON) -c 'import pytest' 2>/dev/null || $(PYTHON) -m pip install -q 'pytest>=7'
	@$(PYTHON) -c 'import dkim, dns.resolver' 2>/dev/null || $(PYTHON) -m pip install -q 'dkimpy>=1.1' 'dnspython>=2.4'
	@$(IMAPTEST_BUILD) $(IMAPTEST_DIR)

clean-data:
	rm -rf ./tern-data

# --- a local cluster: 3 nodes on 127.0.0.2-4, HAProxy on 127.0.0.1 (see cluster/tern-local) ----
.PHONY: cluster-up cluster-down

cluster-up: build
	TERN_BIN="$$($(CARGO) metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tern" \
		cluster/tern-local up 3

cluster-down:
	cluster/tern-local down
