// A real onboarding flow across the suite, one flow per iteration:
//   1. document-ocr reads a generated passport or ID card whose photo area holds a real face;
//   2. face-match compares a selfie with that same document page (genuine pairs and a share of impostors);
//   3. phone-proof sends a code to a phone artifact, the code is read from the SMS sink, and verified.
// Run it through scripts/loadtest.sh onboarding, which builds, starts the suite on SeaweedFS and Redis, seeds
// the artifacts, mints each virtual user its own tokens, and writes the summary into docs/benchmarks.md.
//
//   OCR_URL, FACE_URL, PHONE_URL, SINK_URL   the services and the SMS sink
//   FLOWS    JSON array of {document, format, document_number, selfie, face: "pass" (genuine)|"fail", phone}
//   TOKENS   JSON array, one per virtual user, of {ocr, face, phone} gateway tokens
//   RATE     flows per second (default 2); DURATION (default 60s)
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter, Rate } from 'k6/metrics';

const RATE = parseInt(__ENV.RATE || '2', 10);
const DURATION = __ENV.DURATION || '60s';
const flows = new SharedArray('flows', () => JSON.parse(open(__ENV.FLOWS)));
const tokens = new SharedArray('tokens', () => JSON.parse(open(__ENV.TOKENS)));
const MAX_VUS = tokens.length;
// Outright passes among the answers: a genuine document photo may be small or soft (`review`), an MRZ may need
// a look (`review`); the checks only fail on a wrong outcome.
const passed = { ocr: new Rate('ocr_pass'), face: new Rate('face_pass') };
// Verdicts answered 200, per service: the runner checks each has its ledger entry.
const verdicts = {
  ocr: new Counter('verdicts_ocr'),
  face: new Counter('verdicts_face'),
  phone: new Counter('verdicts_phone'),
};

export const options = {
  scenarios: {
    onboarding: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(10, RATE * 4)),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{name:ocr}': ['p(95)<600', 'p(99)<1200'],
    'http_req_duration{name:face}': ['p(95)<400', 'p(99)<800'],
    'http_req_duration{name:challenge}': ['p(95)<150', 'p(99)<300'],
    'http_req_duration{name:verify}': ['p(95)<150', 'p(99)<300'],
    'http_req_duration{name:sink}': ['p(99)<300'],
    // Per-route counts and error rates, so the runner's summary can report them.
    'http_reqs{name:ocr}': ['count>0'],
    'http_reqs{name:face}': ['count>0'],
    'http_reqs{name:challenge}': ['count>0'],
    'http_reqs{name:verify}': ['count>0'],
    'http_req_failed{name:ocr}': ['rate<0.01'],
    'http_req_failed{name:face}': ['rate<0.01'],
    'http_req_failed{name:challenge}': ['rate<0.01'],
    'http_req_failed{name:verify}': ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

const VERDICT_FIELDS = ['id', 'service', 'verdict', 'confidence', 'reasons', 'result', 'artifacts', 'audit_token', 'created_at'];

function post(url, body, token, name) {
  return http.post(url, JSON.stringify(body), {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    tags: { name },
  });
}

function count(kind, r) {
  if (r.status !== 200) return;
  verdicts[kind].add(1);
  if (kind in passed) passed[kind].add(r.json('verdict') === 'pass');
}

/** The standard verdict: every field, a known outcome, confidence in [0, 1], a compact JWS audit token. */
function isVerdict(r) {
  if (r.status !== 200) return false;
  const v = r.json();
  return (
    VERDICT_FIELDS.every((f) => f in v) &&
    ['pass', 'fail', 'review'].includes(v.verdict) &&
    v.confidence >= 0 && v.confidence <= 1 &&
    Array.isArray(v.reasons) &&
    v.audit_token.split('.').length === 3
  );
}

export default function () {
  const flow = flows[exec.scenario.iterationInTest % flows.length];
  const token = tokens[(exec.vu.idInTest - 1) % tokens.length];

  const ocr = post(`${__ENV.OCR_URL}/v1/documents/ocr`, { artifact_id: flow.document }, token.ocr, 'ocr');
  count('ocr', ocr);
  check(ocr, {
    'ocr: verdict': isVerdict,
    'ocr: pass or review': (r) => r.status === 200 && ['pass', 'review'].includes(r.json('verdict')),
    'ocr: document number': (r) =>
      r.status === 200 && r.json('result.fields.document_number.value') === flow.document_number,
  });

  const face = post(
    `${__ENV.FACE_URL}/v1/faces/match`,
    { reference_artifact_id: flow.document, probe_artifact_id: flow.selfie },
    token.face,
    'face',
  );
  count('face', face);
  check(face, {
    'face: verdict': isVerdict,
    // A genuine pair must not fail and an impostor must not pass (a clear mismatch on a poor photo is `review`).
    'face: expected outcome': (r) =>
      r.status === 200 && r.json('verdict') !== (flow.face === 'pass' ? 'fail' : 'pass'),
  });

  const created = post(
    `${__ENV.PHONE_URL}/v1/phone/challenges`,
    { phone_artifact_id: flow.phone, channel: 'sms' },
    token.phone,
    'challenge',
  );
  if (!check(created, { 'phone: challenge 201': (r) => r.status === 201 })) return;
  const id = created.json('challenge_id');
  const sms = http.get(`${__ENV.SINK_URL}/codes/${id}`, { tags: { name: 'sink' } });
  if (!check(sms, { 'phone: code delivered': (r) => r.status === 200 })) return;
  const verified = post(
    `${__ENV.PHONE_URL}/v1/phone/challenges/${id}/verify`,
    { code: sms.json('code') },
    token.phone,
    'verify',
  );
  count('phone', verified);
  check(verified, {
    'phone: verdict': isVerdict,
    'phone: pass': (r) => r.status === 200 && r.json('verdict') === 'pass',
  });
}
