-- Migration 0012: a node's relay port defaults to 2525, the relay listener of the node bootstrap
-- (mta-nodes/policy, relay_listen = 0.0.0.0:2525). Port 25 is the node's inbound listener, which takes
-- bounces and feedback reports and relays nothing: a gateway relaying there had every message refused.
-- Nodes registered before keep the port they have (one set deliberately is not ours to change).
ALTER TABLE nodes ALTER COLUMN relay_port SET DEFAULT 2525;
