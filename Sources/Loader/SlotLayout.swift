// SlotLayout: the address ranges of one 64 GiB slot.
import ColoABI

/// The address ranges of one 64 GiB slot, as colo_abi.h lays them out.
public struct SlotLayout: Sendable, Equatable {
    /// The first address of the slot (COLO_SLOT_SIZE aligned).
    public let base: UInt64

    /// A slot starting at `base`, which must be COLO_SLOT_SIZE aligned.
    public init(base: UInt64) {
        precondition(base % COLO_SLOT_SIZE == 0, "slot base \(base) is not slot aligned")
        self.base = base
    }

    /// Where the lowest page of a program with PT_LOAD alignment `alignment` is mapped: 1 MiB
    /// above COLO_IMAGE_OFFSET if the alignment allows, so that the top of its stack, just
    /// below it, is in the same 2 MiB of addresses (one page-table page less a process).
    public func imageBase(alignment: UInt64) -> UInt64 {
        base + COLO_IMAGE_OFFSET + (alignment <= COLO_IMAGE_PACK_OFFSET ? COLO_IMAGE_PACK_OFFSET : 0)
    }
    /// The (exclusive) top of the initial stack of such a program, just below it.
    public func stackTop(alignment: UInt64) -> UInt64 {
        imageBase(alignment: alignment) - (COLO_IMAGE_OFFSET - COLO_STACK_TOP_OFFSET)
    }
    /// Where the mmap area starts; the interpreter is mapped first there.
    public var mmapLow: UInt64 { base + COLO_MMAP_LO_OFFSET }
    /// Where the mmap area ends.
    public var mmapHigh: UInt64 { base + COLO_MMAP_HI_OFFSET }
    /// The lowest top of an initial stack (that of a program aligned to more than 1 MiB).
    public var stackTop: UInt64 { base + COLO_STACK_TOP_OFFSET }
    /// The lowest address the stack may reach.
    public var stackLimit: UInt64 { base + COLO_STACK_LIMIT_OFFSET }
    /// The first address after the slot.
    public var end: UInt64 { base + COLO_SLOT_SIZE }
}
