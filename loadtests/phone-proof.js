// phone-proof under load: the whole possession flow at a fixed arrival rate.
// Each iteration creates a challenge for a seeded phone artifact, reads the code from the SMS sink
// (`idvctl sms-sink`, standing in for the phone), sends WRONG wrong codes, then the right one.
// Run it through scripts/loadtest.sh, which builds, starts and seeds everything; or set the variables below.
//
//   BASE_URL    phone-proof (default http://127.0.0.1:8083)
//   SINK_URL    sms sink (default http://127.0.0.1:8099)
//   TOKEN       a gateway token with phone:challenge and phone:verify
//   PHONES      file with a JSON array of phone artifact IDs (each number takes 5 challenges per 10 minutes)
//   RATE        iterations per second (default 200); DURATION (default 60s); WRONG (default 1, 0–4)
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8083';
const SINK = __ENV.SINK_URL || 'http://127.0.0.1:8099';
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '60s';
const WRONG = parseInt(__ENV.WRONG || '1', 10);
const phones = new SharedArray('phones', () => JSON.parse(open(__ENV.PHONES)));
const params = (name) => ({
  headers: { Authorization: `Bearer ${__ENV.TOKEN}`, 'Content-Type': 'application/json' },
  tags: { name },
});

export const options = {
  scenarios: {
    flow: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Math.max(20, Math.ceil(RATE / 4)),
      maxVUs: Math.max(100, Math.ceil(RATE * 2)),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{name:verify}': ['p(95)<50', 'p(99)<100'],
    'http_req_duration{name:create}': ['p(95)<100'],
    dropped_iterations: ['count<' + Math.ceil(RATE)],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

function verify(id, code) {
  const res = http.post(`${BASE}/v1/phone/challenges/${id}/verify`, JSON.stringify({ code }), params('verify'));
  return res.status === 200 ? res.json() : null;
}

export default function () {
  const artifact = phones[exec.scenario.iterationInTest % phones.length];
  const created = http.post(
    `${BASE}/v1/phone/challenges`,
    JSON.stringify({ phone_artifact_id: artifact, channel: 'sms' }),
    params('create'),
  );
  if (!check(created, { 'create 201': (r) => r.status === 201 })) return;
  const id = created.json('challenge_id');
  const sms = http.get(`${SINK}/codes/${id}`, { tags: { name: 'sink' } });
  if (!check(sms, { 'code delivered': (r) => r.status === 200 })) return;
  const code = sms.json('code');
  const wrongCode = code.split('').map((c) => (c === '0' ? '1' : '0')).join('');
  for (let i = 0; i < WRONG; i++) {
    const v = verify(id, wrongCode);
    check(v, {
      'wrong code fails': (v) => v && v.verdict === 'fail' && v.reasons[0].code === 'code_mismatch',
    });
  }
  const v = verify(id, code);
  check(v, {
    'right code passes': (v) => v && v.verdict === 'pass',
    'proof and audit tokens': (v) => v && v.result.proof_token && v.audit_token,
  });
}
