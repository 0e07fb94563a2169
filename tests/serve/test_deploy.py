"""test_deploy.py BUILD - validates deploy/Dockerfile and deploy/kubernetes/ (docs/deploy.md)
without a cluster: the manifests are well formed and agree with each other (labels, ports,
probes, volumes, grace period); the Dockerfile copies files that exist and installs the
packages of every library the binary needs; and the container's arguments, with the image's
paths mapped onto the build tree, start a real server whose probe paths answer 200 and whose
handler from the ConfigMap works. The HorizontalPodAutoscaler scales the Deployment, agrees with
the PodDisruptionBudget, and its request-rate metric is the prometheus-adapter rule's, whose
series the real server exports; `kubectl kustomize` (if kubectl is here) renders every listed
resource. Run by `make serve-test`."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promcheck  # noqa: E402
from test_serve import BUILD, Server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KDIR = os.path.join(ROOT, "deploy", "kubernetes")
DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile")
ADAPTER_RULES = "prometheus-adapter-rules.yaml"  # not in the kustomization (its header says why)


def load_manifests():
    docs = {}
    for name in sorted(os.listdir(KDIR)):
        with open(os.path.join(KDIR, name)) as f:
            for d in yaml.safe_load_all(f):
                docs[(d["kind"], d.get("metadata", {}).get("name", name))] = (name, d)
    return docs


def dockerfile():
    """[(instruction, argument text)] with continuation lines joined."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    return [tuple(l.split(None, 1)) for l in text.splitlines() if l.strip() and not l.startswith("#")]


class TestDeploy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.deploy = cls.docs[("Deployment", "hyperlight-serve")][1]
        cls.pod = cls.deploy["spec"]["template"]["spec"]
        cls.c = cls.pod["containers"][0]

    def test_kustomization_lists_every_manifest(self):
        k = self.docs[("Kustomization", "kustomization.yaml")][1]
        files = sorted(f for f in os.listdir(KDIR) if f not in ("kustomization.yaml", ADAPTER_RULES))
        self.assertEqual(sorted(k["resources"]), files)  # the adapter's rules go to its own namespace
        for (kind, name), (_, d) in self.docs.items():
            self.assertTrue(d.get("apiVersion") and kind, name)

    def test_labels_and_ports_agree(self):
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(self.deploy["spec"]["selector"]["matchLabels"].items() - labels.items(), set())
        svc = self.docs[("Service", "hyperlight-serve")][1]
        pdb = self.docs[("PodDisruptionBudget", "hyperlight-serve")][1]
        self.assertEqual(svc["spec"]["selector"].items() - labels.items(), set())
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"].items() - labels.items(), set())
        port = {p["name"]: p["containerPort"] for p in self.c["ports"]}
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "http")
        self.assertEqual(port, {"http": 8080})
        args = self.c["args"]
        self.assertEqual(args[args.index("--listen") + 1], "0.0.0.0:%d" % port["http"])
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            self.assertEqual(self.c[probe]["httpGet"], {"path": path, "port": "http"})
        expose = [a for i, a in dockerfile() if i == "EXPOSE"]
        self.assertEqual(expose, [str(port["http"])])

    def test_grace_period_covers_the_drain(self):
        args = self.c["args"]
        self.assertGreater(self.pod["terminationGracePeriodSeconds"] * 1000, int(args[args.index("--grace") + 1]))

    def test_volumes_back_every_path_in_the_args(self):
        mounts = {m["name"]: m["mountPath"] for m in self.c["volumeMounts"]}
        vols = {v["name"]: v for v in self.pod["volumes"]}
        self.assertEqual(set(mounts), set(vols))
        cm = self.docs[("ConfigMap", vols["handlers"]["configMap"]["name"])][1]
        self.assertEqual(vols["tokens"]["secret"]["secretName"], "hyperlight-tokens")
        args = self.c["args"]
        token = args[args.index("--token-file") + 1]
        self.assertEqual(os.path.dirname(token), mounts["tokens"])
        for i, a in enumerate(args):
            if a == "--handler":
                path = args[i + 1].split("=", 1)[1]
                self.assertEqual(os.path.dirname(path), mounts["handlers"])
                self.assertIn(os.path.basename(path), cm["data"])

    def test_dockerfile_copies_what_make_builds(self):
        ins = dockerfile()
        copies = [shlex.split(a) for i, a in ins if i == "COPY"]
        for c in copies:
            for src in c[:-1]:
                self.assertTrue(os.path.isfile(os.path.join(ROOT, src)), src)
        entry = yaml.safe_load([a for i, a in ins if i == "ENTRYPOINT"][0])
        self.assertEqual(entry, ["/usr/local/bin/hyperlight", "serve"])
        self.assertIn(["build/bin/hyperlight", "/usr/local/bin/hyperlight"], copies)
        self.assertNotIn("command", self.c)  # the image's ENTRYPOINT runs, with the Deployment's args
        self.assertEqual([a for i, a in ins if i == "USER"], [str(self.pod["securityContext"]["runAsUser"])])

    def test_dockerfile_installs_every_needed_library(self):
        run = " ".join(a for i, a in dockerfile() if i == "RUN")
        out = subprocess.run(["readelf", "-d", os.path.join(BUILD, "bin", "hyperlight")], capture_output=True,
                             text=True, check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", out)
        self.assertIn("libmicrohttpd.so.12", needed)
        for lib in needed:
            path = subprocess.run(["sh", "-c", "ldconfig -p | awk '$1 == \"%s\" {print $NF; exit}'" % lib],
                                  capture_output=True, text=True).stdout.strip()
            pkg = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                                 text=True).stdout.split(":")[0]
            with self.subTest(lib=lib):
                self.assertTrue(pkg == "libc6" or re.search(r"\b%s\b" % re.escape(pkg), run), (lib, pkg))

    def container_args(self):
        """The container's args with the image's paths mapped onto a temporary directory (the
        ConfigMap's handlers, the token k8s-test-token) and the build tree, on a free loopback port."""
        tmp = tempfile.mkdtemp(prefix="hl-deploy-")
        cm = self.docs[("ConfigMap", "hyperlight-handlers")][1]
        mounts = {m["name"]: m["mountPath"] for m in self.c["volumeMounts"]}
        for name, text in cm["data"].items():
            os.makedirs(os.path.join(tmp, "handlers"), exist_ok=True)
            with open(os.path.join(tmp, "handlers", name), "w") as f:
                f.write(text)
        with open(os.path.join(tmp, "tokens"), "w") as f:
            f.write("k8s-test-token\n")
        paths = {mounts["handlers"]: os.path.join(tmp, "handlers"), mounts["tokens"]: tmp,
                 "/usr/local/lib/hyperlight/guests": os.path.join(BUILD, "guests")}
        args = []
        for a in self.c["args"]:
            for image_path, here in paths.items():
                a = a.replace(image_path, here)
            args.append(a)
        i = args.index("--listen")
        args[i + 1] = "127.0.0.1:0"  # the same server, on a free loopback port
        return args

    def test_container_args_start_a_server(self):
        with Server(*self.container_args(), auth=True) as s:
            self.assertEqual(s.request("/readyz")[:2], (200, {"status": "ready"}))
            self.assertEqual(s.request("/healthz")[:2], (200, {"status": "ok"}))
            s.token = "k8s-test-token"
            self.assertEqual(s.post("/v1/handlers/greet", {"name": "pod"}), (200, {"hello": "pod"}))
            self.assertEqual(s.stop(), 0)

    def hpa(self):
        return self.docs[("HorizontalPodAutoscaler", "hyperlight-serve")][1]["spec"]

    def adapter_rule(self):
        """The one prometheus-adapter rule whose metric is the HPA's Pods metric."""
        cm = self.docs[("ConfigMap", "adapter-config")]
        self.assertEqual(cm[0], ADAPTER_RULES)
        rules = yaml.safe_load(cm[1]["data"]["config.yaml"])["rules"]
        pods = [m["pods"]["metric"]["name"] for m in self.hpa()["metrics"] if m["type"] == "Pods"]
        self.assertEqual(len(pods), 1)
        mine = [r for r in rules if r["name"]["as"] == pods[0]]
        self.assertEqual(len(mine), 1, pods[0])
        return mine[0]

    def test_hpa_scales_the_deployment(self):
        hpa = self.hpa()
        self.assertEqual(hpa["scaleTargetRef"], {"apiVersion": self.deploy["apiVersion"], "kind": self.deploy["kind"],
                                                 "name": self.deploy["metadata"]["name"]})
        self.assertEqual(self.docs[("HorizontalPodAutoscaler", "hyperlight-serve")][1]["apiVersion"], "autoscaling/v2")
        self.assertLessEqual(hpa["minReplicas"], hpa["maxReplicas"])
        self.assertNotIn("replicas", self.deploy["spec"])  # the HPA owns it; apply would reset it
        # a PDB that keeps minReplicas pods would refuse every eviction, and a node drain would hang
        pdb = self.docs[("PodDisruptionBudget", "hyperlight-serve")][1]["spec"]
        self.assertNotIn("maxUnavailable", pdb)
        self.assertIsInstance(pdb["minAvailable"], int)  # a percentage would need other arithmetic
        self.assertLess(pdb["minAvailable"], hpa["minReplicas"])
        self.assertEqual(pdb["selector"], self.deploy["spec"]["selector"])

    def test_hpa_metrics_are_backed(self):
        hpa = self.hpa()
        self.assertEqual(sorted(m["type"] for m in hpa["metrics"]), ["Pods", "Resource"])
        cpu = [m["resource"] for m in hpa["metrics"] if m["type"] == "Resource"]
        self.assertEqual(cpu, [{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}])
        for c in self.pod["containers"]:  # utilization is usage over the request: every container needs one
            with self.subTest(container=c["name"]):
                self.assertIn("cpu", c["resources"]["requests"])
        pods = [m["pods"] for m in hpa["metrics"] if m["type"] == "Pods"][0]
        self.assertEqual(pods["target"], {"type": "AverageValue", "averageValue": "1000"})
        self.assertEqual(pods["metric"]["name"], self.adapter_rule()["name"]["as"])
        ann = self.deploy["spec"]["template"]["metadata"]["annotations"]
        port = {p["name"]: p["containerPort"] for p in self.c["ports"]}
        self.assertEqual(ann, {"prometheus.io/scrape": "true", "prometheus.io/port": str(port["http"]),
                               "prometheus.io/path": "/metrics"})

    def test_hpa_scales_down_one_drained_pod_at_a_time(self):
        b = self.hpa()["behavior"]
        self.assertEqual(b["scaleUp"]["stabilizationWindowSeconds"], 0)
        self.assertEqual(b["scaleDown"]["stabilizationWindowSeconds"], 300)
        self.assertEqual(b["scaleDown"]["policies"], [{"type": "Pods", "value": 1, "periodSeconds": 60}])
        # the next pod leaves only once the last one has had its whole grace period
        self.assertGreaterEqual(b["scaleDown"]["policies"][0]["periodSeconds"], self.pod["terminationGracePeriodSeconds"])

    def test_adapter_rule_matches_the_servers_metrics(self):
        rule = self.adapter_rule()
        m = re.fullmatch(r"(%s)\{(.*)\}" % promcheck.NAME, rule["seriesQuery"])
        self.assertTrue(m, rule["seriesQuery"])
        metric, selector = m.group(1), m.group(2)
        self.assertEqual(selector, 'namespace!="",pod!=""')  # the labels Prometheus's scrape job adds
        self.assertEqual(rule["resources"], {"overrides": {"namespace": {"resource": "namespace"},
                                                           "pod": {"resource": "pod"}}})
        self.assertTrue(re.search(rule["name"]["matches"], metric))
        q = re.fullmatch(r'sum\(rate\(<<\.Series>>\{<<\.LabelMatchers>>,route=~"([^"]*)"\}\[(\w+)\]\)\) '
                         r"by \(<<\.GroupBy>>\)", rule["metricsQuery"])
        self.assertTrue(q, rule["metricsQuery"])
        self.assertEqual(q.group(2), "1m")
        with Server(*self.container_args(), auth=True) as s:
            s.token = "k8s-test-token"
            self.assertEqual(s.request("/readyz")[0], 200)
            self.assertEqual(s.post("/v1/handlers/greet", {"name": "pod"}), (200, {"hello": "pod"}))
            self.assertEqual(s.post("/v1/run", {"language": "lua", "code": "print(1)"})[0], 200)
            self.assertEqual(s.request("/metrics", raw=True)[0], 200)  # counted in the next scrape
            st, text, _ = s.request("/metrics", raw=True)
            self.assertEqual(st, 200)
            self.assertEqual(s.stop(), 0)
        samples = [(l, v) for n, l, v in promcheck.parse(text) if n == metric]
        # the server's own labels: no pod or namespace to clash with the scrape job's (exported_pod, or honor_labels)
        self.assertEqual({tuple(sorted(l)) for l, _ in samples}, {("language", "route", "status")})
        routes = {l["route"] for l, _ in samples}
        self.assertEqual(routes, {"/readyz", "/v1/handlers", "/v1/run", "/metrics"})
        # PromQL's =~ is anchored: only the API routes count, not the probes and scrapes
        self.assertEqual({r for r in routes if re.fullmatch(q.group(1), r)}, {"/v1/handlers", "/v1/run"})

    def test_kubectl_kustomize_renders_every_resource(self):
        kubectl = shutil.which("kubectl")
        if not kubectl:
            self.skipTest("no kubectl (Debian's kubernetes-client has `kubectl kustomize`)")
        out = subprocess.run([kubectl, "kustomize", KDIR], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        rendered = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout)}
        k = self.docs[("Kustomization", "kustomization.yaml")][1]
        listed = {key: d for key, (f, d) in self.docs.items() if f in k["resources"]}
        self.assertEqual(sorted(rendered), sorted(listed))
        for key, d in listed.items():  # no transformers: every resource comes out as written
            with self.subTest(resource=key):
                self.assertEqual(rendered[key], d)

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[2:])
