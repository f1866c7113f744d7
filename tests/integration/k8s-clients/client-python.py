#!/usr/bin/env python3
"""The official Python client (Debian's python3-kubernetes) against the hub, with the
kubeconfig `drover kubeconfig` printed: lists, a ConfigMap created, and a watch stream that sees
it. Usage: client-python.py KUBECONFIG NAME (prints ok/FAIL lines; exit 1 on any FAIL)."""
import sys
import threading
import time

from kubernetes import client, config, watch

kubeconfig, name = sys.argv[1], sys.argv[2]
fails = 0


def check(what, cond, seen=""):
    global fails
    print(("ok" if cond else "FAIL") + " python: " + what + ("" if cond else " (seen: %.400s)" % seen),
          flush=True)
    if not cond:
        fails += 1


def step(what, fn):
    try:
        fn()
    except Exception as e:  # any failure is a FAIL naming the step
        body = getattr(e, "body", "") or ""
        check(what, False, "%s: %s %s" % (type(e).__name__, getattr(e, "status", ""), body or e))


config.load_kube_config(config_file=kubeconfig)
core = client.CoreV1Api()
apps = client.AppsV1Api()
ns = "default"


def list_pods():
    pods = core.list_namespaced_pod(ns)
    check("list pods (%d)" % len(pods.items), len(pods.items) >= 1, str(pods)[:200])


def list_deployments():
    ds = apps.list_namespaced_deployment(ns)
    check("list deployments (%s)" % ",".join(d.metadata.name for d in ds.items),
          len(ds.items) >= 1, str(ds)[:200])


def list_every_kind():
    # The typed client checks the fields its models require as it decodes each object, so a
    # list that decodes is one the hub shaped as Kubernetes does.
    lists = [
        ("nodes", core.list_node, 1),
        ("namespaces", core.list_namespace, 4),
        ("events", core.list_event_for_all_namespaces, 0),
        ("services", core.list_service_for_all_namespaces, 1),
        ("configmaps", core.list_config_map_for_all_namespaces, 0),
        ("secrets", core.list_secret_for_all_namespaces, 0),
        ("replicasets", apps.list_replica_set_for_all_namespaces, 1),
        ("daemonsets", apps.list_daemon_set_for_all_namespaces, 1),
        ("controllerrevisions", apps.list_controller_revision_for_all_namespaces, 1),
    ]
    for what, fn, least in lists:
        try:
            got = fn()
            check("list %s (%d)" % (what, len(got.items)), len(got.items) >= least, str(got)[:300])
        except Exception as e:
            check("list " + what, False, "%s: %s" % (type(e).__name__, str(e)[:300]))
    node = core.list_node().items[0]
    check("a node's Ready condition and addresses",
          any(c.type == "Ready" for c in node.status.conditions) and node.status.node_info is not None,
          str(node.status)[:300])


step("list pods", list_pods)
step("list deployments", list_deployments)
step("list every kind", list_every_kind)

# A watch on ConfigMaps (in a thread, bounded), then the ConfigMap it must see ADDED.
events = []
werr = []


def watcher():
    try:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=20,
                           _request_timeout=25):
            if ev["object"].metadata.name == name:
                events.append(ev["type"])
                if "MODIFIED" in events:
                    w.stop()
    except Exception as e:
        werr.append("%s: %s" % (type(e).__name__, str(e)[:300]))


t = threading.Thread(target=watcher, daemon=True)
t.start()
time.sleep(1)


def create():
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"by": "python"}),
                            data={"a": "1"})
    got = core.create_namespaced_config_map(ns, cm)
    check("create configmap " + name, got.metadata.name == name and got.data == {"a": "1"},
          str(got)[:200])


def modify():
    got = core.patch_namespaced_config_map(name, ns, {"data": {"b": "2"}})
    check("patch configmap (data.b added)", got.data == {"a": "1", "b": "2"}, str(got.data))


step("create configmap", create)
time.sleep(0.5)
step("patch configmap", modify)
t.join(25)
check("watch.Watch().stream: ADDED then MODIFIED", events[:1] == ["ADDED"] and "MODIFIED" in events,
      "%s %s" % (events, werr))
step("delete configmap", lambda: core.delete_namespaced_config_map(name, ns))
sys.exit(1 if fails else 0)
