{{/* Common labels of every object. */}}
{{- define "idv.labels" -}}
app.kubernetes.io/part-of: idv
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The object name of one service: <release>-<service>. */}}
{{- define "idv.name" -}}
{{- printf "%s-%s" .root.Release.Name .service | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one service's pods. */}}
{{- define "idv.selector" -}}
app.kubernetes.io/name: {{ .service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* The environment every service reads: auth, audit, ledger, limits, regions. */}}
{{- define "idv.commonEnv" -}}
{{- $v := .Values -}}
- name: IDV_AUTH__ISSUER
  value: {{ required "auth.issuer is required: the chart never trusts the dev issuer" $v.auth.issuer | quote }}
- name: IDV_AUTH__JWKS
{{- if $v.auth.jwksSecret }}
  value: /etc/idv/gateway/jwks.json
{{- else }}
  value: {{ required "auth.jwksUrl or auth.jwksSecret is required" $v.auth.jwksUrl | quote }}
{{- end }}
- name: IDV_AUTH__MAX_LIFETIME_SECS
  value: {{ $v.auth.maxLifetimeSecs | quote }}
- name: IDV_AUDIT__KEYS_PATH
  value: /etc/idv/audit/keys.json
- name: IDV_AUDIT__LEDGER_URL
  valueFrom:
    secretKeyRef: {name: {{ $v.ledger.secret }}, key: url}
- name: IDV_AUDIT__LEDGER_TIMEOUT_MS
  value: {{ $v.ledger.timeoutMs | quote }}
- name: IDV_AUDIT__CHECKPOINT_EVERY_ENTRIES
  value: {{ $v.ledger.checkpointEveryEntries | quote }}
- name: IDV_AUDIT__CHECKPOINT_EVERY_SECS
  value: {{ $v.ledger.checkpointEverySecs | quote }}
- name: IDV_RATE_LIMIT__REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $v.redis.secret }}, key: url}
- name: IDV_RATE_LIMIT__REQUESTS_PER_SECOND
  value: {{ $v.rateLimit.requestsPerSecond | quote }}
- name: IDV_RATE_LIMIT__BURST
  value: {{ $v.rateLimit.burst | quote }}
- name: IDV_HTTP__SHUTDOWN_GRACE_SECS
  value: {{ $v.shutdownGraceSecs | quote }}
{{- range $name, $r := $v.regions }}
{{- $p := printf "IDV_REGIONS__%s__" (upper $name) }}
- name: {{ $p }}KIND
  value: s3
- name: {{ $p }}BUCKET
  value: {{ required (printf "regions.%s.bucket is required" $name) $r.bucket | quote }}
- name: {{ $p }}AWS_REGION
  value: {{ $r.awsRegion | quote }}
{{- if $r.endpoint }}
- name: {{ $p }}ENDPOINT
  value: {{ $r.endpoint | quote }}
{{- end }}
- name: {{ $p }}PATH_STYLE
  value: {{ $r.pathStyle | quote }}
- name: {{ $p }}PREFIX
  value: {{ $r.prefix | quote }}
{{- if $v.s3Credentials.secret }}
- name: {{ $p }}ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ $v.s3Credentials.secret }}, key: access-key-id}
- name: {{ $p }}SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.s3Credentials.secret }}, key: secret-access-key}
{{- end }}
{{- end }}
{{- end -}}
