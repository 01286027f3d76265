// pxl.d.ts - types of pxl.js (hand-written; README.md has the prose).

/** Any constructor with the WHATWG WebSocket interface (the browser's, Node's global, the `ws` package's class). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type Jitter = 'full' | 'equal' | 'none';

export interface BackoffOptions {
  /** Base delay of the first reconnect attempt, ms. Default 500. */
  minDelay?: number;
  /** Cap of the delay, ms. Default 30000. */
  maxDelay?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Default 'full'. */
  jitter?: Jitter;
}

export interface ConnectOptions extends BackoffOptions {
  /** Sent as ?token=; a function is called (and awaited) before every connect and reconnect. Default none. */
  token?: string | null | (() => string | null | undefined | Promise<string | null | undefined>);
  /** The WebSocket class to use. Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect after a lost connection. Default true. */
  reconnect?: boolean;
  /** Failed reconnect attempts in a row before giving up ('failed'). Default Infinity. */
  maxAttempts?: number;
  /** ms from creating a socket to the server's system/connected frame; 0 = none. Default 10000. */
  connectTimeout?: number;
  /** Default timeout of request(), ms; 0 = none. Default 10000. */
  requestTimeout?: number;
  /** Requests that may wait for the connection; more reject at once ('queue_full'). Default 100. */
  queueLimit?: number;
  /** Try system/resume after a reconnect when the server offers it. Default true. */
  resume?: boolean;
}

export interface RequestOptions {
  /** ms; overrides requestTimeout for this request; 0 = none. */
  timeout?: number;
}

export interface JoinOptions extends RequestOptions {
  userId?: string | number;
  userType?: string;
  username?: string;
}

export type PxlErrorCode = 'server' | 'refused' | 'timeout' | 'closed' | 'queue_full' | 'failed';

export class PxlError extends Error {
  readonly name: 'PxlError';
  readonly code: PxlErrorCode;
  /** code 'server': the error frame {type:'error', action:'message', data:{error}, requestId}. */
  readonly frame?: Frame;
  /** code 'refused': the room route's {success:false, error, ...} response. */
  readonly response?: any;
  /** code 'closed' for a request that was sent: the close code and reason. */
  readonly closeCode?: number;
  readonly closeReason?: string;
  /** code 'timeout'. */
  readonly type?: string;
  readonly action?: string;
  readonly requestId?: number;
}

/** A frame from the server (pushed or a reply), as parsed JSON. */
export interface Frame {
  type: string;
  action: string;
  data?: any;
  response?: any;
  requestId?: string | number;
  /** Room history position "EPOCH:OFFSET" (servers with rooms.history). */
  pos?: string;
  [key: string]: any;
}

export type MessageHandler = (data: any, frame: Frame) => void;

export interface RoomResume {
  recovered: boolean;
}

export interface EventMap {
  connected: { type: 'connected'; clientId: string | null; resumeToken: string | null };
  authenticated: { type: 'authenticated'; userId: string | number; message: string };
  open: { type: 'open'; clientId: string | null; reconnected: boolean; resumed: boolean };
  close: { type: 'close'; code: number; reason: string; willReconnect: boolean };
  reconnecting: { type: 'reconnecting'; attempt: number; delay: number };
  failed: { type: 'failed'; attempts: number; code: number; reason: string };
  resumed: { type: 'resumed'; clientId: string | null; previousClientId: string | null; rooms: Record<string, RoomResume> };
  rejoined: { type: 'rejoined'; rooms: string[]; failed: { roomName: string; error: string }[]; resumeError?: string };
  error: { type: 'error'; error: unknown; where: string };
}
export type EventName = keyof EventMap;

export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface JoinResponse {
  success: true;
  message: string;
  data: { userId: string | number; userType: string; username: string; roomName: string; joinedAt: string };
}
export interface LeaveResponse {
  success: true;
  message: string;
  data: { roomName: string; leftAt: string };
  clientId: string;
}

export interface PxlClient {
  readonly state: State;
  /** From system/connected (after a resume: the resumed session's). */
  readonly clientId: string | null;
  /** From auth/authenticated on this connection; undefined when anonymous. */
  readonly userId: string | number | undefined;
  /** Rooms remembered (joined and not left), in join order. */
  readonly rooms: string[];

  request<T = any>(type: string, action: string, data?: any, options?: RequestOptions): Promise<T>;
  join(roomName: string, options?: JoinOptions): Promise<JoinResponse>;
  leave(roomName: string, options?: RequestOptions): Promise<LeaveResponse>;

  /** type and action may be '*' (any action of a type: (type, '*'); anything: ('*', '*')). Returns off. */
  on(type: string, action: string, handler: MessageHandler): () => void;
  /** Without handler: every handler of (type, action). */
  off(type: string, action: string, handler?: MessageHandler): void;

  addEventListener<K extends EventName>(name: K, listener: (event: EventMap[K]) => void): () => void;
  removeEventListener<K extends EventName>(name: K, listener: (event: EventMap[K]) => void): void;

  /** Ends the client for good: no reconnect; pending and queued requests reject ('closed'). */
  close(code?: number, reason?: string): Promise<void>;
  /** Resolves once the client has ended (close() or gave up). */
  closed(): Promise<void>;
}

export function connect(url: string | URL, options?: ConnectOptions): PxlClient;

/** The delay before reconnect attempt `attempt` (1-based), ms. */
export function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;

declare const pxl: {
  connect: typeof connect;
  PxlError: typeof PxlError;
  backoffDelay: typeof backoffDelay;
};
export default pxl;
