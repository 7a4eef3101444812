#!/usr/bin/env bash
# The test command of the README: formatting, lints, then every test of the workspace against
# real services started by the tests themselves (private redis-server, simulator, Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end suites (tests/, motionq-limitbench) run the real binary as worker processes.
cargo build -p motionq --locked
cargo test --workspace --locked --no-fail-fast "$@"
