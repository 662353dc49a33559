//go:build tools

// Package tools pins the toxiproxy server command in go.mod; nothing here is built.
package tools

import _ "github.com/Shopify/toxiproxy/v2/cmd/server"
