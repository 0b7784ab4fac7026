import { describe, expect, it } from 'vitest';
import aws4 from 'aws4';
import { SigningKeys, signRequest } from '../../src/adapters/sigv4.ts';

// The lean DynamoDB client signs with aws4 but keeps the signing key as a
// KeyObject: every header must be the one aws4 itself would send.
function request(amzDate: string, region = 'eu-west-1'): aws4.Request {
  return {
    host: `dynamodb.${region}.amazonaws.com`,
    path: '/',
    method: 'POST',
    service: 'dynamodb',
    region,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem', 'X-Amz-Date': amzDate },
    body: JSON.stringify({ TableName: 'orders', Item: { pk: { S: 'tenant#é€' } } }),
  };
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('signRequest', () => {
  it('sends the headers aws4.sign sends, across days, regions, secrets and a session token', () => {
    const keys = new SigningKeys();
    const cases: [aws4.Request, aws4.Credentials][] = [
      [request('20261208T021500Z'), credentials],
      [request('20261208T235959Z'), credentials],
      [request('20261209T000000Z'), credentials],
      [request('20261209T000000Z', 'us-east-1'), credentials],
      [request('20261209T000000Z'), { ...credentials, secretAccessKey: 'another/secret+key' }],
      [request('20261209T000000Z'), { ...credentials, sessionToken: 'session-token' }],
    ];
    const authorizations = new Set<string>();
    for (const [sent, creds] of cases) {
      const ours = signRequest(structuredClone(sent), creds, keys);
      const theirs = aws4.sign(structuredClone(sent), creds);
      expect(ours.headers).toEqual(theirs.headers);
      authorizations.add(String(ours.headers?.Authorization));
    }
    // Every case signs differently: none was answered from another's key.
    expect(authorizations.size).toBe(cases.length);
  });

  it('keeps a bounded number of keys, and signs the same after dropping them', () => {
    const keys = new SigningKeys();
    const first = signRequest(request('20261208T021500Z'), credentials, keys).headers?.Authorization;
    for (let day = 1; day <= 200; day++) signRequest(request(`2027${String(Math.ceil(day / 28)).padStart(2, '0')}${String((day % 28) + 1).padStart(2, '0')}T000000Z`), credentials, keys);
    expect(keys.size).toBeLessThanOrEqual(64);
    expect(keys.size).toBeGreaterThan(0);
    expect(signRequest(request('20261208T021500Z'), credentials, keys).headers?.Authorization).toBe(first);
    expect(first).toBe(aws4.sign(request('20261208T021500Z'), credentials).headers?.Authorization);
  });
});
