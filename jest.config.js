/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // test/ holds whole-project checks (the bench); network integration tests will join them (issue 2).
  roots: ['<rootDir>/chaincode/test', '<rootDir>/gateway-api/test', '<rootDir>/test'],
  // Tests import the chaincode's client entry from source; the built bin imports it from dist.
  moduleNameMapper: { '^@evpay/chaincode/client$': '<rootDir>/chaincode/src/client.ts' },
  setupFiles: ['<rootDir>/jest.setup.js'],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest only transpiles (fast); `npm run typecheck` checks types once.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'chaincode/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
