/**
 * Vigil's error type and codes, for everything outside schemas/: defined with the contract
 * (schemas/errors.ts, which says why), imported from here by the code that raises and handles them.
 */
export { VigilError, isVigilError, messageOf, type ErrorCode } from '../schemas/errors';
