// What a stream handler may do with its session's connection.

/** Something the session can hold back while the connection is congested (a pipe, an exec stream). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export interface Out {
  /** Send a frame. With `source`, the source is paused while the connection is congested. */
  send(frame: Buffer, source?: Pausable): void;
  /** Resolves once the connection can take more (for handlers that pull their data). */
  drained(): Promise<void>;
  /** False after the session ended: stop sending. */
  readonly open: boolean;
}
