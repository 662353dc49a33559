module smux-rs/interop-peer

go 1.21

require github.com/xtaci/smux v1.5.57
