/** The union of intervals (external time), with fixed intervals: every expected value is worked by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unionLength, unionLengthOutside } from '../../src/union.js';

test('unionLength counts overlapping and touching intervals once', () => {
  assert.equal(unionLength([[0, 10], [5, 20], [30, 40], [40, 45]]), 35);
  assert.equal(unionLength([]), 0);
});

test('unionLengthOutside takes out the time inside the holes, once, however the intervals fall', () => {
  // one call [0, 300] while the transaction's own callback waited [1, 122] behind another request
  assert.equal(unionLengthOutside([[0, 300]], [1, 122]), 179);
  // two parallel calls [0, 100] and [50, 200], union [0, 200]; waits [90, 110] and [150, 160], and one after it
  assert.equal(unionLengthOutside([[50, 200], [0, 100]], [90, 110, 150, 160, 250, 300]), 170);
  // two separate calls; a wait straddling the gap between them counts only where a call was open
  assert.equal(unionLengthOutside([[0, 10], [20, 30]], [5, 25]), 10);
  // waits outside every call, or none
  assert.equal(unionLengthOutside([[10, 20]], [0, 10, 20, 30]), 10);
  assert.equal(unionLengthOutside([[10, 20]], null), 10);
  assert.equal(unionLengthOutside([], [0, 5]), 0);
});
