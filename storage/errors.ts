// Storage errors carry an S3-like code so server/ can map them one-to-one, but storage/ knows
// nothing of HTTP: no statuses here.

export type StorageErrorCode =
  | 'NoSuchBucket' | 'BucketNotEmpty' | 'BucketAlreadyExists' | 'NoSuchKey' | 'NoSuchUpload'
  | 'InvalidPart' | 'InvalidPartOrder' | 'EntityTooSmall' | 'EntityTooLarge' | 'InvalidRange'
  | 'PreconditionFailed' | 'ConditionalRequestConflict' | 'BadDigest' | 'IncompleteBody'
  | 'InsufficientWriteQuorum' | 'InsufficientReadQuorum' | 'FileCorrupt' | 'InvalidArgument'
  | 'KeyTooLongError' | 'DriveFormatMismatch' | 'NoSuchVersion' | 'TooManyParts';

export class StorageError extends Error {
  constructor(readonly code: StorageErrorCode, message?: string) {
    super(message ?? code);
    this.name = 'StorageError';
  }
}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}
