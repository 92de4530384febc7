import { describe, expect, it } from 'vitest';
import { isLoopback, parseListenAddress } from './listen-address.ts';

describe('parseListenAddress', () => {
  it('reads host and port', () => {
    expect(parseListenAddress('127.0.0.1:8300')).toEqual({ host: '127.0.0.1', port: 8300 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListenAddress(':8300')).toEqual({ host: '127.0.0.1', port: 8300 });
  });

  it('refuses what is not HOST:PORT', () => {
    for (const bad of ['8300', 'host', 'h:99999', 'h:x'])
      expect(() => parseListenAddress(bad)).toThrow(/CLI_USAGE/);
  });

  it('knows loopback addresses', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('10.0.0.1')).toBe(false);
  });
});
