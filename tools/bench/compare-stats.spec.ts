import { describe, expect, it } from 'vitest';
import { compareRounds, comparisonTable, goLiveBytes, parseGoMemStats, ratio, type RoundMetrics } from './compare-stats';

// The tail of `/debug/pprof/heap?debug=1` as runtime/pprof writes it (Go 1.26), shortened.
const HEAP = `heap profile: 2: 4096 [90: 368640] @ heap/1048576
1: 2048 [1: 2048] @ 0x4a1b2c 0x4a1d3e
#	0x4a1b2b	main.alloc+0x2b	/src/main.go:12

# runtime.MemStats
# Alloc = 41943040
# TotalAlloc = 9663676416
# Sys = 150994944
# Lookups = 0
# Mallocs = 120000000
# Frees = 119000000
# HeapAlloc = 41943040
# HeapSys = 125829120
# HeapIdle = 75497472
# HeapInuse = 50331648
# HeapReleased = 62914560
# HeapObjects = 1000000
# Stack = 3145728 / 3145728
# MSpan = 800000 / 1600000
# MCache = 2400 / 31200
# BuckHashSys = 1500000
# GCSys = 5000000
# OtherSys = 1000000
# NextGC = 83886080
# LastGC = 1764930000000000000
# PauseNs = [12000 15000 0 0]
# PauseEnd = [1764930000000000000 0 0 0]
# NumGC = 97
# NumForcedGC = 2
# GCCPUFraction = 0.0123
# DebugGC = false
# MaxRSS = 200000000
`;

describe('parseGoMemStats', () => {
  it('reads the integer fields and splits "inuse / sys" pairs', () => {
    const s = parseGoMemStats(HEAP);
    expect(s['HeapInuse']).toBe(50331648);
    expect(s['HeapReleased']).toBe(62914560);
    expect(s['StackInuse']).toBe(3145728);
    expect(s['StackSys']).toBe(3145728);
    expect(s['MSpanInuse']).toBe(800000);
    expect(s['NumGC']).toBe(97);
    expect(s['NumForcedGC']).toBe(2);
    // Not integers: left out rather than misread.
    expect(s['GCCPUFraction']).toBeUndefined();
    expect(s['PauseNs']).toBeUndefined();
    expect(s['DebugGC']).toBeUndefined();
    expect(goLiveBytes(s)).toBe(50331648 + 3145728);
  });

  it('ignores profile lines before the block', () => {
    expect(parseGoMemStats(HEAP)['Alloc']).toBe(41943040);
    expect(Object.keys(parseGoMemStats(HEAP))).not.toContain('heap');
  });

  it('rejects a body without the block or without HeapInuse', () => {
    expect(() => parseGoMemStats('<html>404 page not found</html>')).toThrow(/runtime.MemStats/);
    expect(() => parseGoMemStats('# runtime.MemStats\n# Alloc = 1\n')).toThrow(/HeapInuse/);
  });
});

describe('compareRounds', () => {
  const rounds: RoundMetrics[] = [
    { target: 'pilot', metrics: { coldMs: 100, rssKiB: 200 } },
    { target: 'istiod', metrics: { coldMs: 400, rssKiB: 250 } },
    { target: 'istiod', metrics: { coldMs: 300, rssKiB: 150 } },
    { target: 'pilot', metrics: { coldMs: 140, rssKiB: 100, onlyPilot: 3 } },
  ];

  it('takes medians per target in run order and the ratio subject ÷ reference', () => {
    const rows = compareRounds(rounds, 'pilot', 'istiod');
    expect(rows.map((r) => r.metric)).toEqual(['coldMs', 'rssKiB', 'onlyPilot']);
    expect(rows[0]!.values).toEqual({ pilot: [100, 140], istiod: [400, 300] });
    expect(rows[0]!.medians).toEqual({ pilot: 120, istiod: 350 });
    expect(rows[0]!.ratio).toBe(0.34);
    expect(rows[1]!.ratio).toBe(0.75);
    // A metric one side lacks has no ratio.
    expect(rows[2]!.medians['istiod']).toBeNaN();
    expect(rows[2]!.ratio).toBeNaN();
  });

  it('renders a Markdown table with a dash for what is missing', () => {
    const table = comparisonTable(compareRounds(rounds, 'pilot', 'istiod'), 'pilot', 'istiod');
    expect(table.split('\n')[0]).toBe('| metric | pilot (median; rounds) | istiod (median; rounds) | pilot ÷ istiod |');
    expect(table).toContain('| coldMs | 120 (100, 140) | 350 (400, 300) | 0.34 |');
    expect(table).toContain('| onlyPilot | 3 (—, 3) | — (—, —) | — |');
  });
});

describe('ratio', () => {
  it('is NaN for a zero or missing denominator', () => {
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(NaN, 2)).toBeNaN();
    expect(ratio(1, 3)).toBe(0.33);
  });
});
