import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { BinlogPosition, BinlogPositionCodec, compareFiles } from './binlog-position.ts';
import { GtidList, GtidSet } from './gtid.ts';

const codec = new BinlogPositionCodec();

describe('MariaDB GTID lists and positions', () => {
  it('parses and prints MariaDB GTID lists, one entry per domain', () => {
    expect(GtidList.parse(' 1-2-3 , 0-1-42').toString()).toBe('0-1-42,1-2-3');
    expect(GtidList.parse('').isEmpty()).toBe(true);
    expect(GtidList.parse('0-1-5').with({ domain: 0, server: 2, seq: 6n }).toString()).toBe('0-2-6');
    for (const bad of ['x', '0-1', '0-1-2,0-1-3', '0-1-99999999999999999999', '-1-1-1']) {
      expect(() => GtidList.parse(bad), bad).toThrow(TidemarkError);
    }
  });

  it('orders positions of one history by transaction, across domains', () => {
    let state = GtidList.EMPTY;
    const history: BinlogPosition[] = [new BinlogPosition(state)];
    const domains = [0, 0, 1, 0, 1, 1, 7, 0];
    const seqs = new Map<number, bigint>();
    for (const d of domains) {
      const seq = (seqs.get(d) ?? 0n) + 1n;
      seqs.set(d, seq);
      state = state.with({ domain: d, server: 1, seq });
      history.push(new BinlogPosition(state));
    }
    for (let i = 0; i < history.length; i++) {
      for (let j = 0; j < history.length; j++) {
        const c = Math.sign(history[i]!.compare(history[j]!));
        expect(c, `${i} vs ${j}`).toBe(Math.sign(i - j));
        const [a, b] = [history[i]!.sortKey(), history[j]!.sortKey()];
        expect(a < b ? -1 : a > b ? 1 : 0, `sortKey ${i} vs ${j}`).toBe(Math.sign(i - j));
      }
    }
  });

  it('is a total order even between histories (ties broken by domains, then servers)', () => {
    const a = codec.parse('0-1-5,1-1-5');
    const b = codec.parse('0-1-6,1-1-4');
    const c = codec.parse('0-2-6,1-1-4');
    expect(a.compare(b)).toBeLessThan(0);
    expect(b.compare(c)).toBeLessThan(0);
    expect(b.equals(codec.parse('1-1-4,0-1-6'))).toBe(true);
  });

  it('round-trips text and bytes, keeping the restart point and the binlog coordinate', () => {
    const positions = [
      new BinlogPosition(GtidList.EMPTY),
      new BinlogPosition(GtidList.parse('0-1-9')),
      new BinlogPosition(GtidList.parse('0-1-45,3-7-2'), GtidList.parse('0-1-43'), {
        file: 'mariadb-bin.000007',
        offset: 1234,
      }),
    ];
    for (const p of positions) {
      expect(codec.parse(p.toString()).equals(p)).toBe(true);
      const back = codec.decode(codec.encode(p));
      expect(back.equals(p)).toBe(true);
      expect(back.coordinate).toEqual(p.coordinate);
      expect(back.restart?.toString()).toEqual(p.restart?.toString());
    }
    expect(positions[0]!.toString()).toBe('0-0-0');
    expect(positions[2]!.toString()).toBe('0-1-45,3-7-2;restart=0-1-43');
    expect(positions[2]!.connectState().toString()).toBe('0-1-43');
    expect(() => codec.decode(Buffer.from([9]))).toThrow(TidemarkError);
  });

  it('measures lag in bytes across binlog files it knows the sizes of', () => {
    const at = (file: string, offset: number) => new BinlogPosition(GtidList.EMPTY, null, { file, offset });
    const c = new BinlogPositionCodec();
    expect(c.distanceBytes(at('b.000001', 100), at('b.000001', 350))).toBe(250);
    expect(c.distanceBytes(at('b.000001', 100), at('b.000003', 50))).toBeNull();
    c.noteBinlogs([
      { file: 'b.000001', size: 1000 },
      { file: 'b.000002', size: 500 },
      { file: 'b.000003', size: 60 },
    ]);
    expect(c.distanceBytes(at('b.000001', 100), at('b.000003', 50))).toBe(900 + 500 + 50);
    expect(compareFiles('b.000010', 'b.000009')).toBeGreaterThan(0);
  });

  it('knows a checkpoint read back from its text (no coordinate) is 0 bytes behind an end it has reached', () => {
    const c = new BinlogPositionCodec();
    const checkpoint = c.parse('0-1-42');
    const end = c.parse('0-1-42').withCoordinate({ file: 'b.000001', offset: 900 });
    expect(c.distanceBytes(checkpoint, end)).toBe(0);
    expect(
      c.distanceBytes(checkpoint, c.parse('0-1-43').withCoordinate({ file: 'b.000001', offset: 990 })),
    ).toBeNull();
  });
});

describe('MySQL GTID sets (no MySQL server here: unit-tested only)', () => {
  const u1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const u2 = '4e11fa47-71ca-11e1-9e33-c80aa9429562';
  it('parses, normalises and prints uuid:interval sets', () => {
    const s = GtidSet.parse(`${u2}:1-3, ${u1.toUpperCase()}:7-9:1-5:6\n`);
    expect(s.toString()).toBe(`${u1}:1-9,${u2}:1-3`);
    expect(s.count()).toBe(12n);
    expect(s.contains(u1, 9n)).toBe(true);
    expect(s.add(u2, 5n).toString()).toBe(`${u1}:1-9,${u2}:1-3:5`);
    expect(s.add(u2, 4n).toString()).toBe(`${u1}:1-9,${u2}:1-4`);
    for (const bad of ['x:1', `${u1}`, `${u1}:0`, `${u1}:5-3`])
      expect(() => GtidSet.parse(bad), bad).toThrow(TidemarkError);
  });
});
