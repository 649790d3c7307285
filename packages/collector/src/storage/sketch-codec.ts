/**
 * The compact form a WireSketch takes in a storage row: n, zero and every bin count as unsigned
 * LEB128 varints (most bins hold small counts: one byte each), k0 zig-zag encoded, sum, min and
 * max as float64. A sketch spanning 200 keys takes about 230 bytes instead of ~1 KB of JSON.
 *
 * Layout: varint n | varint zero | zigzag k0 | varint bins.length | f64 sum | f64 min | f64 max | varint bins...
 * Counts can exceed 2³² after many merges, so the varints use arithmetic, not 32-bit bit operations.
 */
import type { WireSketch } from '@loopscope/protocol';

export function encodeSketch(s: WireSketch): Buffer {
  const out = Buffer.allocUnsafe(4 * 10 + 24 + s.bins.length * 10);
  let at = 0;
  const varint = (v: number): void => {
    while (v >= 128) {
      out[at++] = (v % 128) + 128;
      v = Math.floor(v / 128);
    }
    out[at++] = v;
  };
  varint(s.n);
  varint(s.zero);
  varint(s.k0 >= 0 ? s.k0 * 2 : -s.k0 * 2 - 1);
  varint(s.bins.length);
  at = out.writeDoubleLE(s.sum, at);
  at = out.writeDoubleLE(s.min, at);
  at = out.writeDoubleLE(s.max, at);
  for (const c of s.bins) varint(c);
  return out.subarray(0, at);
}

export function decodeSketch(buf: Uint8Array): WireSketch {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = view[at++];
      if (b === undefined) throw new Error('truncated sketch');
      v += (b & 127) * scale;
      if (b < 128) return v;
      scale *= 128;
    }
  };
  const n = varint();
  const zero = varint();
  const zk = varint();
  const k0 = zk % 2 === 0 ? zk / 2 : -(zk + 1) / 2;
  const length = varint();
  const sum = view.readDoubleLE(at);
  const min = view.readDoubleLE(at + 8);
  const max = view.readDoubleLE(at + 16);
  at += 24;
  const bins = new Array<number>(length);
  for (let i = 0; i < length; i++) bins[i] = varint();
  return { n, sum, min, max, zero, k0, bins };
}
