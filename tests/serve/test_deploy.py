"""test_deploy.py BUILD - validates deploy/Dockerfile and deploy/kubernetes/ (docs/deploy.md)
without a cluster: the manifests are well formed and agree with each other (labels, ports,
probes, volumes, grace period); the Dockerfile copies files that exist and installs the
packages of every library the binary needs; and the container's arguments, with the image's
paths mapped onto the build tree, start a real server whose probe paths answer 200 and whose
handler from the ConfigMap works. Run by `make serve-test`."""
import os
import re
import shlex
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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

    def test_container_args_start_a_server(self):
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
        with Server(*args, auth=True) as s:
            self.assertEqual(s.request("/readyz")[:2], (200, {"status": "ready"}))
            self.assertEqual(s.request("/healthz")[:2], (200, {"status": "ok"}))
            s.token = "k8s-test-token"
            self.assertEqual(s.post("/v1/handlers/greet", {"name": "pod"}), (200, {"hello": "pod"}))
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[2:])
