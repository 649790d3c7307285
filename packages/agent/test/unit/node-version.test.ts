/** Which Node.js versions the agent starts on (the rest get one warning from loopscope/register). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SUPPORTED_NODE, supportedNode, unsupportedNodeMessage } from '../../src/config.js';

test('the supported lines start at the patch with the CVE-2025-59466 fix; 20, the odd lines and older patches are not', () => {
  const cases: Array<[string, boolean]> = [
    ['v20.20.2', false],
    ['v22.21.1', false],
    ['v22.22.0', true],
    ['v22.23.5', true],
    ['v23.11.1', false],
    ['v24.12.0', false],
    ['v24.13.0', true],
    ['v24.22.3', true],
    ['v25.9.0', false],
    ['v26.0.0', true],
    ['v26.12.1', true],
    ['v27.0.0-pre', true],
    ['22.22.0', true],
    ['', false],
    ['not a version', false],
  ];
  for (const [version, supported] of cases) assert.equal(supportedNode(version), supported, version);
});

test('the warning names the version, the supported lines and what happens', () => {
  const message = unsupportedNodeMessage('v20.20.2');
  assert.match(message, /^loopscope: Node\.js v20\.20\.2 is not supported/);
  assert.match(message, /22\.22\.0 or later on 22, 24\.13\.0 or later on 24, or 26 and later/);
  assert.match(message, /the agent stays off and the app runs without it$/);
});

test('SUPPORTED_NODE is what every package.json engines says', () => {
  for (const pkg of ['../../../package.json', '../../../../protocol/package.json', '../../../../collector/package.json', '../../../../cli/package.json', '../../../../dashboard/package.json', '../../../../../package.json']) {
    const { engines } = JSON.parse(readFileSync(new URL(pkg, import.meta.url), 'utf8')) as { engines: { node: string } };
    assert.equal(engines.node, SUPPORTED_NODE, pkg);
  }
});
