#!/usr/bin/env bash
# The Helm chart (deploy/helm/idv) checked offline: `helm lint`, `helm template` validated against the Kubernetes
# 1.35 API schemas (kubernetes-validate --strict), the pods' hardening asserted, and the values the chart must
# refuse (no gateway issuer: it never trusts the dev issuer) refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_helm
CHART=deploy/helm/idv
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
log "helm lint and template ($CHART)"
"$HELM" lint --quiet "$CHART" -f "$CHART/ci-values.yaml"
"$HELM" template idv "$CHART" -f "$CHART/ci-values.yaml" > "$OUT/rendered.yaml"
log "kubernetes-validate --strict (Kubernetes 1.35)"
"$HELM_VENV/bin/kubernetes-validate" --strict --quiet -k 1.35.0 "$OUT/rendered.yaml"
"$HELM_VENV/bin/python" - "$OUT/rendered.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]:
    assert len(kinds.get(kind, [])) == 3, f"one {kind} per service: {kinds.get(kind)}"
assert kinds.get("NetworkPolicy"), "a NetworkPolicy"
for d in docs:
    if d["kind"] not in ("Deployment", "Job"):
        continue
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, d["metadata"]["name"]
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        env = {e["name"]: e for e in c.get("env", [])}
        # The database's CA bundle (ci-values sets ledger.caConfigMap) where the ledger URL is used.
        ca = {m["mountPath"]: m for m in c["volumeMounts"]}.get("/etc/idv/postgres-ca")
        assert ca and ca["readOnly"] is True, f"{d['metadata']['name']}: the PostgreSQL CA mounted read-only"
        if d["kind"] == "Deployment":
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert "requests" in c["resources"] and "limits" in c["resources"]
            assert env["IDV_AUTH__JWKS"]["value"] and env["IDV_AUTH__ISSUER"]["value"], "never the dev issuer"
            for secret in ("IDV_AUDIT__LEDGER_URL", "IDV_RATE_LIMIT__REDIS_URL"):
                assert "secretKeyRef" in env[secret]["valueFrom"], f"{secret} from a Secret"
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            assert mounts["/etc/idv/audit"]["readOnly"] is True
            if c["name"] == "phone-proof":
                # The key ring as a read-only file, so a rotated Secret reaches the pod and SIGHUP re-reads it.
                assert "PHONE_SECRET_KEY" not in env, "the ring from a file, not a variable"
                assert env["PHONE_SECRET_KEY_FILE"]["value"].startswith("/etc/idv/phone/")
                assert mounts["/etc/idv/phone"]["readOnly"] is True
print(f"chart ok: {len(docs)} objects ({', '.join(f'{k} {len(v)}' for k, v in sorted(kinds.items()))})")
PY
log "the chart refuses to render without the gateway's issuer"
if "$HELM" template idv "$CHART" > /dev/null 2>"$OUT/err"; then
  echo "rendered without auth.issuer: the chart would trust the dev issuer" >&2; exit 1
fi
grep -q "auth.issuer is required" "$OUT/err"
