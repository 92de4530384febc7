import { describe, expect, it } from 'vitest';
import { guardRequest, hostnameOf } from './request-guard.ts';

const loopback = { loopback: true, allowedHosts: [] };
const code = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe('guardRequest', () => {
  it('accepts loopback names, with or without a port', () => {
    for (const host of ['127.0.0.1:8300', 'localhost:8300', '[::1]:8300', '127.0.0.1', 'LOCALHOST:1'])
      expect(
        code(() => guardRequest('GET', { host }, loopback)),
        host,
      ).toBeUndefined();
  });

  it('refuses other names on loopback (DNS rebinding), unless allowed', () => {
    expect(code(() => guardRequest('GET', { host: 'evil.example:8300' }, loopback))).toBe('API_FORBIDDEN');
    expect(code(() => guardRequest('GET', {}, loopback))).toBe('API_FORBIDDEN');
    const proxied = { loopback: true, allowedHosts: ['tidemark.internal'] };
    expect(code(() => guardRequest('GET', { host: 'tidemark.internal' }, proxied))).toBeUndefined();
  });

  it('refuses a foreign or opaque Origin, accepts its own', () => {
    const host = '127.0.0.1:8300';
    const json = { host, 'content-type': 'application/json' };
    expect(code(() => guardRequest('POST', { ...json, origin: 'http://evil.example' }, loopback))).toBe(
      'API_FORBIDDEN',
    );
    expect(code(() => guardRequest('POST', { ...json, origin: 'null' }, loopback))).toBe('API_FORBIDDEN');
    expect(code(() => guardRequest('POST', { ...json, origin: 'http://localhost:8300' }, loopback))).toBe(
      'API_FORBIDDEN',
    );
    expect(code(() => guardRequest('POST', { ...json, origin: `http://${host}` }, loopback))).toBeUndefined();
  });

  it('requires JSON on mutating calls only', () => {
    const host = 'localhost:1';
    for (const m of ['POST', 'PATCH', 'DELETE']) {
      expect(code(() => guardRequest(m, { host, 'content-type': 'text/plain' }, loopback))).toBe(
        'API_UNSUPPORTED_MEDIA_TYPE',
      );
      expect(code(() => guardRequest(m, { host }, loopback))).toBe('API_UNSUPPORTED_MEDIA_TYPE');
      expect(
        code(() => guardRequest(m, { host, 'content-type': 'application/json; charset=utf-8' }, loopback)),
      ).toBeUndefined();
    }
    expect(code(() => guardRequest('GET', { host }, loopback))).toBeUndefined();
  });

  it('takes the host name out of a Host header', () => {
    expect(hostnameOf('[::1]:8300')).toBe('::1');
    expect(hostnameOf('Example.COM:80')).toBe('example.com');
    expect(hostnameOf('127.0.0.1')).toBe('127.0.0.1');
  });
});
