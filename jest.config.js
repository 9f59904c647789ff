/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Network integration tests will live in test/ once the Fabric network can run (issue 2).
  roots: ['<rootDir>/chaincode/test'],
  setupFiles: ['<rootDir>/jest.setup.js'],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest only transpiles (fast); `npm run typecheck` checks types once.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'chaincode/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
