/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/chaincode/test', '<rootDir>/test'],
  transform: {
    // tsconfig sets isolatedModules, so ts-jest only transpiles (fast); `npm run typecheck` checks types once.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'chaincode/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
