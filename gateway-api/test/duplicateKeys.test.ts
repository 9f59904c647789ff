/** Duplicate member names in a JSON body (http/duplicateKeys.ts), compared as JSON.parse reads them. */
import { findDuplicateKey } from '../src/http/duplicateKeys';

test('a name given twice in one object is found, with where its object sits', () => {
  expect(findDuplicateKey('{"amountFen":1,"amountFen":1000000}')).toEqual({ key: 'amountFen', path: [] });
  expect(findDuplicateKey('{"a":{"b":1,"c":{"d":1,"d":2}}}')).toEqual({ key: 'd', path: ['a', 'c'] });
  expect(findDuplicateKey('{"calls":[{"x":1},{"y":1,"y":2}]}')).toEqual({ key: 'y', path: ['calls', 1] });
  // Two spellings of one name are one name to JSON.parse.
  expect(findDuplicateKey('{"walletId":"a","wallet\\u0049d":"b"}')).toEqual({ key: 'walletId', path: [] });
});

test('the same name in different objects, and distinct names, are no duplicate', () => {
  expect(findDuplicateKey('{"a":{"id":1},"b":{"id":2},"id":3}')).toBeUndefined();
  expect(findDuplicateKey('[{"id":1},{"id":2}]')).toBeUndefined();
  expect(findDuplicateKey('{"A":1,"a":2,"a ":3}')).toBeUndefined();
  expect(findDuplicateKey('"just a string"')).toBeUndefined();
});
