import { describe, expect, it } from 'vitest';
import { cpuTicks, median, parseVegeta, parseWrk } from './dataplane-parse';

// Captured from wrk 4.1.0 (Debian) and vegeta v12.13.0 on this machine.
const WRK = `Running 1s test @ http://127.0.0.1:28411/e
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   162.62us  534.23us   5.32ms   93.21%
    Req/Sec   114.99k    28.58k  142.55k    70.00%
  Latency Distribution
     50%   21.00us
     75%   24.00us
     90%  225.00us
     99%    2.95ms
  114243 requests in 1.00s, 40.75MB read
  Non-2xx or 3xx responses: 114243
Requests/sec: 114016.11
Transfer/sec:     40.67MB
`;

const VEGETA =
  '{"latencies":{"total":25290040,"mean":252900,"50th":244784,"90th":301250,"95th":359281,"99th":631932,"max":643978,"min":151221},"bytes_in":{"total":300,"mean":3},"bytes_out":{"total":0,"mean":0},"earliest":"2026-12-05T07:17:40.2191467Z","latest":"2026-12-05T07:17:41.210482544Z","end":"2026-12-05T07:17:41.210646029Z","duration":991335844,"wait":163485,"requests":100,"rate":100.87398796809772,"throughput":100.85735519443806,"success":1,"status_codes":{"200":100},"errors":[]}';

describe('data-plane benchmark parsing', () => {
  it('reads wrk --latency output, converting every unit to milliseconds and counting errors', () => {
    const r = parseWrk(WRK);
    expect(r).toEqual({ requests: 114243, seconds: 1, rps: 114016.11, p50ms: 0.021, p90ms: 0.225, p99ms: 2.95, errors: 114243 });
    const withSocketErrors = WRK.replace('  Non-2xx or 3xx responses: 114243\n', '  Socket errors: connect 1, read 2, write 0, timeout 4\n').replace('2.95ms', '1.20s');
    expect(parseWrk(withSocketErrors)).toMatchObject({ errors: 7, p99ms: 1200 });
  });

  it('refuses output that is not wrk --latency', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(/not wrk output/);
    expect(() => parseWrk(WRK.replace(/ {5}90%.*\n/, ''))).toThrow(/"90%"/);
  });

  it('reads a vegeta JSON report (nanoseconds → milliseconds)', () => {
    const r = parseVegeta(VEGETA);
    expect(r.requests).toBe(100);
    expect(r.p50ms).toBeCloseTo(0.244784, 6);
    expect(r.p90ms).toBeCloseTo(0.30125, 6);
    expect(r.p99ms).toBeCloseTo(0.631932, 6);
    expect(r.maxMs).toBeCloseTo(0.643978, 6);
    expect(r.success).toBe(1);
    expect(r.statusCodes).toEqual({ '200': 100 });
    expect(r.errors).toEqual([]);
    expect(parseVegeta(VEGETA.replace('"errors":[]', '"errors":null')).errors).toEqual([]);
    expect(() => parseVegeta('{"requests":1}')).toThrow(/not a vegeta JSON report/);
    expect(() => parseVegeta(VEGETA.replace('"90th":301250,', ''))).toThrow(/latencies\.90th/);
  });

  it('sums utime and stime from /proc/<pid>/stat, whatever the command name holds', () => {
    const fields = (name: string): string => `4242 (${name}) S 1 4242 4242 0 -1 4194560 1021 0 0 0 150 37 0 0 20 0 3 0 12345 1000000 500 18446744073709551615`;
    expect(cpuTicks(fields('envoy'))).toBe(187);
    expect(cpuTicks(fields('wrk) x (y'))).toBe(187);
    expect(() => cpuTicks('garbage')).toThrow(/not a \/proc/);
  });

  it('takes the median of the finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});
