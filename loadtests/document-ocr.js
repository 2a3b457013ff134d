// document-ocr under load: generated passports and ID cards (OCR-B, mild distortions) at a fixed arrival rate.
// Run it through scripts/loadtest.sh document-ocr, which builds, starts and seeds everything.
//
//   BASE_URL  document-ocr (default http://127.0.0.1:8081)
//   TOKEN     a gateway token with ocr:verify
//   DOCS      file with a JSON array of {artifact_id, format, document_number} (what each page carries)
//   RATE      documents per second (default 5); DURATION (default 60s)
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8081';
const RATE = parseInt(__ENV.RATE || '5', 10);
const DURATION = __ENV.DURATION || '60s';
const docs = new SharedArray('docs', () => JSON.parse(open(__ENV.DOCS)));
const overloaded = new Counter('overloaded');
// Verdicts answered 200 (each must have its ledger entry).
const verdicts = new Counter('verdicts');
// Documents the service passed outright; the rest are `review` (a weak line or a repaired character), never `fail`.
const passed = new Rate('passed');

export const options = {
  scenarios: {
    ocr: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, RATE * 2),
      maxVUs: Math.max(50, RATE * 8),
    },
  },
  thresholds: {
    // Overload is answered 503 at once and counted apart; anything else failing is an error.
    'http_req_failed{expected:yes}': ['rate<0.01'],
    checks: ['rate>0.99'],
    // Always true; they make k6 export the latency of answers and of refusals apart.
    'http_req_duration{status:200}': ['max>=0'],
    'http_req_duration{status:503}': ['max>=0'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const doc = docs[exec.scenario.iterationInTest % docs.length];
  const res = http.post(
    `${BASE}/v1/documents/ocr`,
    JSON.stringify({ artifact_id: doc.artifact_id, fields: ['document_number', 'expiry_date'] }),
    {
      headers: { Authorization: `Bearer ${__ENV.TOKEN}`, 'Content-Type': 'application/json' },
      responseCallback: http.expectedStatuses(200, 503),
      tags: { name: 'ocr', expected: 'yes' },
    },
  );
  if (res.status === 200) verdicts.add(1);
  if (res.status === 503) {
    overloaded.add(1);
    check(res, { '503 is overloaded': (r) => r.json('code') === 'overloaded' });
    return;
  }
  if (res.status === 200) passed.add(res.json('verdict') === 'pass');
  check(res, {
    'ocr 200': (r) => r.status === 200,
    'pass or review': (r) => r.status === 200 && ['pass', 'review'].includes(r.json('verdict')),
    'format read': (r) => r.status === 200 && r.json('result.format') === doc.format,
    'document number read': (r) =>
      r.status === 200 && r.json('result.fields.document_number.value') === doc.document_number,
    'only the asked fields': (r) => r.status === 200 && Object.keys(r.json('result.fields')).length === 2,
    'has audit token': (r) => r.status === 200 && (r.json('audit_token') || '').split('.').length === 3,
  });
}
