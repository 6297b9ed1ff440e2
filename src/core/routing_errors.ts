/**
 * What a client is told when routing cannot give it a server: no route matches (28000, as PostgreSQL's
 * "no pg_hba.conf entry"), no host of the cluster suits the target (57P03, as a server that cannot accept
 * connections now), or the server reached turned out to have the wrong role (57P03, retry). The cluster
 * and target are named; host addresses go to the log only.
 */
import { ClientError } from "../protocol/client_error.ts";
import { SQLSTATE } from "../protocol/sqlstate.ts";
import { SEE_LOG_HINT } from "../backend/upstream_errors.ts";

export const noRoute = (session: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.INVALID_AUTHORIZATION_SPECIFICATION,
  message: `no pgrelay route matches this connection (session ${session})`,
  hint: "pgrelay's routes: decide which cluster a connection goes to; none matched its user, database, application_name, source or TLS.",
});

export const noEligibleHost = (session: string, cluster: string, target: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.CANNOT_CONNECT_NOW,
  message: `no server of cluster "${cluster}" is available for target "${target}" (session ${session})`,
  hint: `Retry later. ${SEE_LOG_HINT}`,
});

export const wrongServerRole = (session: string, cluster: string, target: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.CANNOT_CONNECT_NOW,
  message: `the server of cluster "${cluster}" that this session reached is no longer suitable for target "${target}" (session ${session})`,
  hint: "Its role changed (a failover is in progress). Retry the connection.",
});

/** 08006 for a session bound to a host that health checks marked down. */
export const hostDown = (session: string): ClientError => new ClientError({
  severity: "FATAL",
  code: SQLSTATE.CONNECTION_FAILURE,
  message: `pgrelay lost the database server: health checks marked it down (session ${session})`,
  hint: SEE_LOG_HINT,
});
