package io.pgrelay.bench.harness;

/** A fatal error: the script's {@code die}, logged as "ERROR: ..." and ending the run. */
class HarnessException extends RuntimeException {
    HarnessException(String message) {
        super(message);
    }
}
