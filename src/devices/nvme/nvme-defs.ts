/**
 * NVM Express constants: the controller registers, admin and NVM command opcodes, status codes, feature and log
 * page identifiers. Section numbers are the NVM Express Base Specification revision 1.4c (2021) unless a line
 * says otherwise; Linux's include/linux/nvme.h names the same values.
 */

/** Controller registers in BAR 0 (section 3.1, figure 78). */
export const REG_CAP = 0x00, REG_VS = 0x08, REG_INTMS = 0x0c, REG_INTMC = 0x10, REG_CC = 0x14, REG_CSTS = 0x1c,
  REG_NSSR = 0x20, REG_AQA = 0x24, REG_ASQ = 0x28, REG_ACQ = 0x30, REG_CMBLOC = 0x38, REG_CMBSZ = 0x3c;
/** The doorbells start at 0x1000 (section 3.1.24): SQ y tail at 0x1000 + 2y·(4 << DSTRD), CQ y head after it. */
export const DOORBELL_BASE = 0x1000;

/** CAP fields (section 3.1.1). */
export const CAP_CQR = 1 << 16;        // contiguous queues required
export const CAP_TO_SHIFT = 24;        // ready timeout, 500 ms units
export const CAP_HI_CSS_NVM = 1 << 5;  // bit 37: the NVM command set
/** CC fields (section 3.1.5). */
export const CC_EN = 1, CC_CSS_SHIFT = 4, CC_MPS_SHIFT = 7, CC_AMS_SHIFT = 11, CC_SHN_SHIFT = 14,
  CC_IOSQES_SHIFT = 16, CC_IOCQES_SHIFT = 20;
/** The bits of CC that exist (EN, CSS, MPS, AMS, SHN, IOSQES, IOCQES); the rest are reserved and read as 0. */
export const CC_WRITABLE = 0x00fffff1;
/** CSTS fields (section 3.1.6). */
export const CSTS_RDY = 1, CSTS_CFS = 2, CSTS_SHST_COMPLETE = 2 << 2;

/** Queue entry sizes: 64-byte submission (2^6), 16-byte completion (2^4) entries (sections 4.2, 4.6). */
export const SQE_BYTES = 64, CQE_BYTES = 16, SQES_LOG2 = 6, CQES_LOG2 = 4;
/** The memory page size: CC.MPS = 0 only (CAP.MPSMIN = CAP.MPSMAX = 0), 4 KiB. */
export const PAGE = 4096;

/** Admin command opcodes (section 5, figure 139). */
export const ADM_DELETE_SQ = 0x00, ADM_CREATE_SQ = 0x01, ADM_GET_LOG_PAGE = 0x02, ADM_DELETE_CQ = 0x04,
  ADM_CREATE_CQ = 0x05, ADM_IDENTIFY = 0x06, ADM_ABORT = 0x08, ADM_SET_FEATURES = 0x09, ADM_GET_FEATURES = 0x0a,
  ADM_ASYNC_EVENT = 0x0c;
/** NVM command set opcodes (NVM command set, section 6 of the 1.4 Base spec, figure 346). */
export const NVM_FLUSH = 0x00, NVM_WRITE = 0x01, NVM_READ = 0x02, NVM_DSM = 0x09;

/** Identify CNS values (section 5.15.1). */
export const CNS_NAMESPACE = 0x00, CNS_CONTROLLER = 0x01, CNS_ACTIVE_NS_LIST = 0x02, CNS_NS_DESCRIPTORS = 0x03;

/** Feature identifiers (section 5.21.1, figure 271). */
export const FEAT_ARBITRATION = 0x01, FEAT_POWER_MGMT = 0x02, FEAT_TEMP_THRESHOLD = 0x04, FEAT_ERROR_RECOVERY = 0x05,
  FEAT_VOLATILE_WC = 0x06, FEAT_NUM_QUEUES = 0x07, FEAT_IRQ_COALESCE = 0x08, FEAT_IRQ_CONFIG = 0x09,
  FEAT_WRITE_ATOMIC = 0x0a, FEAT_ASYNC_EVENT = 0x0b;

/** Log page identifiers (section 5.14.1). */
export const LOG_ERROR = 0x01, LOG_SMART = 0x02, LOG_FW_SLOT = 0x03;

/**
 * Status codes as the 15-bit Status Field of a completion (section 4.6.1.1): SC in bits 7:0, SCT in 10:8, DNR
 * (do not retry) in 14. Every error here is deterministic, so each carries DNR: a retry would fail the same way.
 */
const DNR = 1 << 14;
const generic = (sc: number): number => sc | DNR;
const specific = (sc: number): number => sc | (1 << 8) | DNR;
const media = (sc: number): number => sc | (2 << 8) | DNR;
export const SC_SUCCESS = 0;
/** Generic command status (SCT 0, figure 128). */
export const SC_INVALID_OPCODE = generic(0x01), SC_INVALID_FIELD = generic(0x02), SC_DATA_TRANSFER_ERROR = generic(0x04),
  SC_INTERNAL = generic(0x06), SC_INVALID_NS = generic(0x0b), SC_CMD_SEQ_ERROR = generic(0x0c),
  SC_PRP_OFFSET_INVALID = generic(0x13), SC_NS_WRITE_PROTECTED = generic(0x20), SC_LBA_RANGE = generic(0x80);
/** Command specific status (SCT 1, figure 129). */
export const SC_CQ_INVALID = specific(0x00), SC_INVALID_QID = specific(0x01), SC_INVALID_QSIZE = specific(0x02),
  SC_AER_LIMIT = specific(0x05), SC_INVALID_VECTOR = specific(0x08), SC_INVALID_LOG_PAGE = specific(0x09),
  SC_INVALID_QUEUE_DELETION = specific(0x0c), SC_FEATURE_NOT_SAVEABLE = specific(0x0d);
/** Media and data integrity errors (SCT 2, figure 131). */
export const SC_WRITE_FAULT = media(0x80), SC_UNRECOVERED_READ = media(0x81);
/** Not a status: the command stays outstanding (an Asynchronous Event Request) and is completed later. */
export const HELD = -1;

/** Asynchronous event: type Error status (0), information Write to Invalid Doorbell Register (0) / Invalid
 *  Doorbell Write Value (1), with the Error Information log page (section 5.2, figure 146). */
export const AEN_TYPE_ERROR = 0, AEN_INVALID_DB_REGISTER = 0, AEN_INVALID_DB_VALUE = 1;
