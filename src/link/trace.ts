/**
 * A Link decorator that logs one line per packet at level trace: `out <summary>` for packets sent into
 * the tunnel, `in <summary>` for packets coming out of it. When the logger is not at trace level the
 * cost is one level check per packet.
 */
import type { Logger } from '../util/log.js';
import { summarizePacket } from '../wire/summary.js';
import type { Link, LinkConfig, PacketHandler } from './link.js';

export function withTrace(link: Link, logger: Logger): Link {
  return {
    send(packet: Uint8Array): void {
      if (logger.enabled('trace')) logger.trace(`out ${summarizePacket(packet)}`);
      link.send(packet);
    },
    onReceive(handler: PacketHandler): void {
      link.onReceive((packet) => {
        if (logger.enabled('trace')) logger.trace(`in ${summarizePacket(packet)}`);
        handler(packet);
      });
    },
    get config(): LinkConfig | undefined {
      return link.config;
    },
    get mtu(): number {
      return link.mtu;
    },
  };
}
