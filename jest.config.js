/** @type {import('jest').Config} */
const common = {
  testEnvironment: 'node',
  // Tests import the chaincode's client entry from source; the built bin imports it from dist.
  moduleNameMapper: { '^@evpay/chaincode/client$': '<rootDir>/chaincode/src/client.ts' },
  setupFiles: ['<rootDir>/jest.setup.js'],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest only transpiles (fast); `npm run typecheck` checks types once.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'chaincode/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      // test/ holds whole-project checks (the bench, the topology rendering).
      roots: ['<rootDir>/chaincode/test', '<rootDir>/gateway-api/test', '<rootDir>/test'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/network/'],
    },
    {
      ...common,
      // Real Fabric processes: the tests' network is brought up before and stopped after (test/network).
      displayName: 'network',
      roots: ['<rootDir>/test/network'],
      globalSetup: '<rootDir>/test/network/globalSetup.ts',
      globalTeardown: '<rootDir>/test/network/globalTeardown.ts',
    },
  ],
};
