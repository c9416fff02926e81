-- /opt/kumomta/etc/policy/cp/node_settings.lua: an example (mta-nodes/README.md explains every key;
-- ansible/roles/kumomta_node writes this file from its variables). Mode 0600, owned by kumod.
return {
  -- https, or http only to the node's own loopback (a TLS sidecar)
  control_plane_url = 'https://cp.example.net:8080',
  -- from POST /v1/nodes (the token is shown once: keep it in Ansible Vault)
  node_id = '6f1c2f5e-8f5a-4a51-9d5c-3c2d1e0f9a11',
  node_token = 'node_REPLACE_WITH_THE_TOKEN_OF_POST_V1_NODES',
  -- from GET /v1/policy/public-key
  policy_public_key_hex = 'REPLACE_WITH_public_key_hex_OF_GET_V1_POLICY_PUBLIC_KEY_64_HEX_DIGITS',
  redis_url = 'redis://:REDIS_PASSWORD@10.0.0.5:6379/0',
  -- the submission gateways (relay) and the control plane (kumod's HTTP listener)
  gateway_cidrs = { '10.0.0.2', '10.0.0.3' },
  control_plane_cidrs = { '10.0.0.5' },
  relay_listen = '0.0.0.0:2525',
  inbound_listen = '0.0.0.0:25',
  http_listen = '0.0.0.0:8000',
  hostname = 'mta-fsn1-1.example.net',
  spool_dir = '/var/spool/kumomta',
  log_dir = '/var/log/kumomta',
  dkim_key_dir = '/opt/kumomta/etc/dkim',
  poll_interval_seconds = 5,
  kumo_share_dir = '/opt/kumomta/share',
  dns_name_servers = { '185.12.64.1:53', '185.12.64.2:53' },
  tsa_urls = { 'http://10.0.0.8:8008' },
  extra_shaping_files = { '/opt/kumomta/etc/shaping-local.toml' },
  -- staging rigs only
  -- egress_overrides = { smtp_port = 2526, prohibited_hosts = {} },
}
