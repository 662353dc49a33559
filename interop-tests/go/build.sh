#!/usr/bin/env bash
# Builds the Go interop peers against both xtaci/smux versions in the field:
#   bin/go-peer-1.5.58 (go.mod, upstream's newest) and bin/go-peer-1.5.16 (go.v1516.mod, Debian's),
#   the kcptun-shaped KCP peer (./kcppeer, kcp-go v5.7.5 + smux) as bin/go-kcp-peer-1.5.58 and
#   bin/go-kcp-peer-1.5.16 from the same two modfiles,
# and the benchmark peer bin/go-bench (./benchpeer, go.mod: xtaci/smux and hashicorp/yamux).
# Modules come from the Go module proxy (go mod download); run it once before the tests.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
go mod download
go mod download -modfile=go.v1516.mod
go build -o bin/go-peer-1.5.58 .
go build -modfile=go.v1516.mod -o bin/go-peer-1.5.16 .
go build -o bin/go-kcp-peer-1.5.58 ./kcppeer
go build -modfile=go.v1516.mod -o bin/go-kcp-peer-1.5.16 ./kcppeer
go build -o bin/go-bench ./benchpeer
echo "built $(pwd)/bin/go-peer-1.5.58, go-peer-1.5.16, go-kcp-peer-1.5.58, go-kcp-peer-1.5.16 and go-bench"
