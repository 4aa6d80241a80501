# OpenBao in server mode for docker-compose.yml: integrated (raft) storage on the openbao-data volume.
# Initialise and unseal once, as docs/operations.md describes; the unseal keys and root token never go
# into this repository or into any foureyes container.

storage "raft" {
  path    = "/openbao/data"
  node_id = "openbao-1"
}

# TLS terminates here in production: mount a certificate and key and set tls_disable = false with
# tls_cert_file / tls_key_file. Inside the compose project the listener is reachable only on the
# `vault` network (the deploy worker) and is not published to the host.
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}

api_addr      = "http://openbao:8200"
cluster_addr  = "http://openbao:8201"
ui            = false
disable_mlock = true

# Audit devices are enabled after initialisation (`bao audit enable file file_path=/openbao/audit/audit.log`).
