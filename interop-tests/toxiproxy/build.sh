#!/usr/bin/env bash
# Builds bin/toxiproxy-server (github.com/Shopify/toxiproxy/v2 v2.5.0, pinned in go.mod) for the
# fault tests (interop-tests/tests/faults.rs) and the fault soak (src/bin/fault-soak.rs).
# The module comes from the Go module proxy (go mod download); run it once before the tests.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
go mod download
go build -o bin/toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server
echo "built $(pwd)/bin/toxiproxy-server (toxiproxy v2.5.0)"
