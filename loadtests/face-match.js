// face-match under load: real photo pairs (genuine and impostor) at a fixed arrival rate.
// Run it through scripts/loadtest.sh face-match, which fetches the models, builds, starts and seeds everything.
//
//   BASE_URL  face-match (default http://127.0.0.1:8082)
//   TOKEN     a gateway token with face:verify
//   PAIRS     file with a JSON array of {reference, probe, expect, accept?} (artifact IDs, the expected verdict,
//             and optionally every acceptable one)
//   RATE      pairs per second (default 20); DURATION (default 60s)
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8082';
const RATE = parseInt(__ENV.RATE || '20', 10);
const DURATION = __ENV.DURATION || '60s';
const pairs = new SharedArray('pairs', () => JSON.parse(open(__ENV.PAIRS)));
const overloaded = new Counter('overloaded');
// Verdicts answered 200 (each must have its ledger entry).
const verdicts = new Counter('verdicts');

export const options = {
  scenarios: {
    match: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(10, RATE),
      maxVUs: Math.max(50, RATE * 4),
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
  const pair = pairs[exec.scenario.iterationInTest % pairs.length];
  const res = http.post(
    `${BASE}/v1/faces/match`,
    JSON.stringify({ reference_artifact_id: pair.reference, probe_artifact_id: pair.probe }),
    {
      headers: { Authorization: `Bearer ${__ENV.TOKEN}`, 'Content-Type': 'application/json' },
      responseCallback: http.expectedStatuses(200, 503),
      tags: { name: 'match', expected: 'yes' },
    },
  );
  if (res.status === 200) verdicts.add(1);
  if (res.status === 503) {
    overloaded.add(1);
    check(res, { '503 is overloaded': (r) => r.json('code') === 'overloaded' });
    return;
  }
  check(res, {
    'match 200': (r) => r.status === 200,
    // `accept`, when given, lists every acceptable outcome (a genuine document photo may be `review`).
    'expected verdict': (r) => r.status === 200 && (pair.accept || [pair.expect]).includes(r.json('verdict')),
    'has audit token': (r) => r.status === 200 && (r.json('audit_token') || '').split('.').length === 3,
  });
}
