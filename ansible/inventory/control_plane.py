#!/usr/bin/env python3
"""Dynamic inventory: the KumoMTA nodes the control plane knows (GET /v1/nodes), so the operator
keeps one list, the control plane's.

Environment:
  KCP_API_URL         the control plane's API, e.g. https://cp.example.net:8080 (required)
  KCP_API_TOKEN       an operator token (read scope is enough), or
  KCP_API_TOKEN_FILE  a file holding it (e.g. .local/admin-token)
  KCP_CA_FILE         a CA bundle to verify the API's certificate (a private CA's ca.pem)
  KCP_INVENTORY_SSH_ADDRESS  public_address (default) or relay_host: what ansible_host is

Groups: kumomta_nodes (every node), region_<region> (e.g. region_fsn1; "-" becomes "_"), canary and
not_canary (the autopilot's canary nodes and the rest), provider_<provider>.
Host variables: kcp_node_id, kcp_node_name, kcp_region, kcp_provider, kcp_canary, kcp_public_address,
kcp_relay_host, kcp_relay_port, kcp_admin_url, kcp_applied_policy_version_id, kcp_floating_ips (the
addresses of the Floating IPs the control plane bought for the node and has not retired, from
GET /v1/ips: the kumomta_node role configures them on the interface), and ansible_host.

Usage (Ansible calls it): control_plane.py --list | --host <name>
"""

import argparse
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

PAGE = 200


def fail(msg):
    sys.stderr.write("control_plane.py: %s\n" % msg)
    sys.exit(1)


def token():
    tok = os.environ.get("KCP_API_TOKEN", "").strip()
    path = os.environ.get("KCP_API_TOKEN_FILE", "").strip()
    if not tok and path:
        try:
            with open(path, encoding="utf-8") as f:
                tok = f.read().strip()
        except OSError as e:
            fail("cannot read KCP_API_TOKEN_FILE %s: %s" % (path, e.strerror))
    if not tok:
        fail("set KCP_API_TOKEN or KCP_API_TOKEN_FILE to an operator token of the control plane")
    return tok


def get(base, path, tok, ctx):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + tok, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as res:
            return json.load(res)
    except urllib.error.HTTPError as e:
        detail = ""
        try:
            body = json.load(e)
            detail = body.get("detail") or body.get("title") or ""
        except (ValueError, AttributeError):
            pass
        fail("GET %s: HTTP %d %s" % (path, e.code, detail))
    except urllib.error.URLError as e:
        fail("GET %s%s: %s" % (base, path, e.reason))
    except ValueError:
        fail("GET %s: not JSON" % path)


def every(base, path, tok, ctx):
    items, cursor = [], None
    while True:
        query = {"limit": PAGE}
        if cursor:
            query["cursor"] = cursor
        page = get(base, path + "?" + urllib.parse.urlencode(query), tok, ctx)
        items.extend(page.get("items", []))
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def fleet():
    base = os.environ.get("KCP_API_URL", "").strip().rstrip("/")
    if not re.match(r"^https?://", base):
        fail("set KCP_API_URL to the control plane's API, e.g. https://cp.example.net:8080")
    ca = os.environ.get("KCP_CA_FILE", "").strip()
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    tok = token()
    return every(base, "/v1/nodes", tok, ctx), every(base, "/v1/ips", tok, ctx)


def group_name(prefix, value):
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", str(value))


def floating_ips(ips):
    """node id -> the bought, unretired addresses on it (hand-registered IPs are the operator's to configure)"""
    out = {}
    for ip in sorted(ips, key=lambda i: i["address"]):
        if ip.get("provider_floating_ip_id") and ip.get("state") != "retired":
            out.setdefault(ip["node_id"], []).append(re.sub(r"/(32|128)$", "", ip["address"]))
    return out


def inventory(items, ips=()):
    address_field = os.environ.get("KCP_INVENTORY_SSH_ADDRESS", "public_address")
    bought = floating_ips(ips)
    hostvars, groups = {}, {}

    def add(group, host):
        groups.setdefault(group, {"hosts": []})["hosts"].append(host)

    for n in sorted(items, key=lambda n: n["name"]):
        name = n["name"]
        hostvars[name] = {
            "ansible_host": n.get(address_field) or n["public_address"],
            "kcp_node_id": n["id"],
            "kcp_node_name": name,
            "kcp_region": n["region"],
            "kcp_provider": n.get("provider"),
            "kcp_canary": bool(n.get("canary")),
            "kcp_public_address": n["public_address"],
            "kcp_relay_host": n.get("relay_host"),
            "kcp_relay_port": n.get("relay_port", 2525),
            "kcp_admin_url": n.get("admin_url"),
            "kcp_applied_policy_version_id": n.get("applied_policy_version_id"),
            "kcp_floating_ips": bought.get(n["id"], []),
        }
        add("kumomta_nodes", name)
        add(group_name("region_", n["region"]), name)
        if n.get("provider"):
            add(group_name("provider_", n["provider"]), name)
        add("canary" if n.get("canary") else "not_canary", name)
    for g in ("kumomta_nodes", "canary", "not_canary"):
        groups.setdefault(g, {"hosts": []})
    out = dict(groups)
    out["all"] = {"children": sorted(g for g in groups)}
    out["_meta"] = {"hostvars": hostvars}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--host")
    args = ap.parse_args()
    inv = inventory(*fleet())
    if args.host:
        json.dump(inv["_meta"]["hostvars"].get(args.host, {}), sys.stdout, indent=2)
    else:
        json.dump(inv, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
