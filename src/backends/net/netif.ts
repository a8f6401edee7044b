/**
 * The netif wire format (xen/include/public/io/netif.h) and the shared-ring header both rings use
 * (xen/include/public/io/ring.h), as compiled for arm64 (ARM-DOMU-ABI.md §6.1, §6.3).
 *
 * A shared ring is one 4 KiB page: req_prod u32 @0, req_event u32 @4, rsp_prod u32 @8, rsp_event u32 @12, then
 * 48 bytes of padding (ring.h's `pvt` union — netif's `smartpoll_active` — plus `__pad[44]`), entries from @64.
 * Requests and responses share the entry array: an entry is a union sized to the larger of the two, and
 * `__RING_SIZE` rounds (4096 - 64) / entry down to a power of two: tx 12-byte entries → 256, rx 8-byte → 256.
 */

export const XEN_PAGE_SIZE = 4096;

/** struct *_sring header (ring.h). */
export const SRING_REQ_PROD = 0, SRING_REQ_EVENT = 4, SRING_RSP_PROD = 8, SRING_RSP_EVENT = 12, SRING_ENTRIES = 64;

/** `__RING_SIZE`: entries per one-page ring, (page - header) / entry rounded down to a power of two. */
export function ringSize(entryBytes: number): number {
  const n = Math.floor((XEN_PAGE_SIZE - SRING_ENTRIES) / entryBytes);
  return 2 ** Math.floor(Math.log2(n));
}

/**
 * struct netif_tx_request (12 bytes): gref u32 @0, offset u16 @4, flags u16 @6, id u16 @8, size u16 @10.
 * struct netif_tx_response (4 bytes): id u16 @0, status i16 @2. The entry is the request's size.
 */
export const TX_ENTRY = 12;
export const TXREQ_GREF = 0, TXREQ_OFFSET = 4, TXREQ_FLAGS = 6, TXREQ_ID = 8, TXREQ_SIZE = 10;
export const TXRSP_ID = 0, TXRSP_STATUS = 2;
export const NET_TX_RING_SIZE = ringSize(TX_ENTRY); // 256

/**
 * struct netif_rx_request (8 bytes): id u16 @0, pad u16 @2, gref u32 @4.
 * struct netif_rx_response (8 bytes): id u16 @0, offset u16 @2, flags u16 @4, status i16 @6.
 */
export const RX_ENTRY = 8;
export const RXREQ_ID = 0, RXREQ_GREF = 4;
export const RXRSP_ID = 0, RXRSP_OFFSET = 2, RXRSP_FLAGS = 4, RXRSP_STATUS = 6;
export const NET_RX_RING_SIZE = ringSize(RX_ENTRY); // 256

/** NETTXF_* (netif_tx_request.flags). */
export const NETTXF_csum_blank = 1 << 0, NETTXF_data_validated = 1 << 1, NETTXF_more_data = 1 << 2,
  NETTXF_extra_info = 1 << 3;
/** NETRXF_* (netif_rx_response.flags). */
export const NETRXF_data_validated = 1 << 0, NETRXF_csum_blank = 1 << 1, NETRXF_more_data = 1 << 2,
  NETRXF_extra_info = 1 << 3, NETRXF_gso_prefix = 1 << 4;

/**
 * struct netif_extra_info (8 bytes, occupies one tx/rx slot): type u8 @0, flags u8 @1, then a union @2
 * (gso: size u16 @2, type u8 @4, pad u8 @5, features u16 @6; mcast: addr[6] @2; hash: type u8 @2, alg u8 @3,
 * value[4] @4). Chained by XEN_NETIF_EXTRA_FLAG_MORE.
 */
export const EXTRA_TYPE = 0, EXTRA_FLAGS = 1, EXTRA_GSO_SIZE = 2, EXTRA_GSO_TYPE = 4, EXTRA_MCAST_ADDR = 2;
export const XEN_NETIF_EXTRA_TYPE_NONE = 0, XEN_NETIF_EXTRA_TYPE_GSO = 1, XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3, XEN_NETIF_EXTRA_TYPE_HASH = 4, XEN_NETIF_EXTRA_TYPE_XDP = 5;
/** Extra types are 1 ..< MAX (XDP, 5, was added to both Xen's and Linux's netif.h in 2020). */
export const XEN_NETIF_EXTRA_TYPE_MAX = 6;
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << 0;
export const XEN_NETIF_GSO_TYPE_NONE = 0, XEN_NETIF_GSO_TYPE_TCPV4 = 1, XEN_NETIF_GSO_TYPE_TCPV6 = 2;

/** NETIF_RSP_* (status of a response). */
export const XEN_NETIF_RSP_DROPPED = -2, XEN_NETIF_RSP_ERROR = -1, XEN_NETIF_RSP_OKAY = 0, XEN_NETIF_RSP_NULL = 1;

/** Largest packet the tx wire format can describe (netif_tx_request.size is u16). */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
/**
 * XEN_NETIF_NR_SLOTS_MIN: the slots per packet every back-end must accept, and the most a front-end may use
 * (netfront never sends more: xennet_start_xmit linearises anything that would take more than 18 slots).
 * Linux netback calls it XEN_NETBK_LEGACY_SLOTS_MAX.
 */
export const XEN_NETIF_NR_SLOTS_MIN = 18;
/**
 * Slots after which a packet's chain is treated as an attack and the vif is failed (Linux netback's
 * fatal_skb_slots default, counted there in slots after the first).
 */
export const FATAL_SKB_SLOTS = 20;

/** Ethernet header, and with one 802.1Q tag (Linux ETH_HLEN / VLAN_ETH_HLEN). */
export const ETH_HLEN = 14, VLAN_ETH_HLEN = 18;

/**
 * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY / RING_PUSH_REQUESTS_AND_CHECK_NOTIFY's test: after moving a producer
 * from `oldProd` to `newProd`, the peer wants an event iff its event index lies in (oldProd, newProd].
 * All u32 arithmetic.
 */
export function needsNotify(newProd: number, oldProd: number, event: number): boolean {
  return ((newProd - event) >>> 0) < ((newProd - oldProd) >>> 0);
}
