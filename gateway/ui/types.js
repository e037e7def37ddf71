// Types of the browser protocol (gateway/PROTOCOL.md). This module has no
// runtime content; other modules import its typedefs with
// `import('./types.js').Name`.

/** @typedef {string} UserId `@localpart:<node id>` */
/** @typedef {string} RoomId `!…` */
/** @typedef {string} EventId `$…` */
/** @typedef {string} BlobId `&…` */

/**
 * @typedef {object} Hello
 * @property {'hello'} push
 * @property {number} protocol
 * @property {string} node
 * @property {string} node_name
 * @property {'open'|'invite'|'closed'} registration
 * @property {{max_message_bytes: number, max_upload_bytes: number}} limits
 */

/**
 * @typedef {object} SessionGrant
 * @property {UserId} user
 * @property {string} access_token
 * @property {number} access_expires
 * @property {string} refresh_token
 * @property {number} refresh_expires
 */

/** @typedef {'online'|'away'|'offline'} Presence */

/**
 * @typedef {object} Profile
 * @property {UserId} user
 * @property {string} display_name
 * @property {BlobId|null} [avatar]
 * @property {string} status
 * @property {Presence|null} [presence]
 * @property {number|null} [last_active]
 */

/** @typedef {'public'|'private'} Visibility */

/**
 * @typedef {object} Settings
 * @property {string} [name]
 * @property {string} [topic]
 * @property {Visibility} [visibility]
 * @property {'members'|'room.settings'} [invites]
 */

/**
 * @typedef {object} RoomSummary
 * @property {RoomId} room
 * @property {string} name
 * @property {string} topic
 * @property {Visibility} visibility
 * @property {UserId|null} [direct_with]
 * @property {number} members
 * @property {number} unread
 * @property {number} mentions
 * @property {boolean} archived
 * @property {boolean} invited
 * @property {EventId|null} [last_event]
 * @property {number} last_ts
 * @property {boolean} [left] pushed when the user is no longer in the room
 */

/**
 * @typedef {object} MemberInfo
 * @property {UserId} user
 * @property {string[]} roles
 * @property {number|null} [muted_until]
 * @property {EventId|null} [read_up_to]
 * @property {EventId|null} [delivered_up_to]
 */

/**
 * @typedef {object} RoomDetail
 * @property {RoomSummary} summary
 * @property {MemberInfo[]} members
 * @property {{name: string, permissions: string[]}[]} roles
 * @property {EventId[]} pins
 * @property {string[]} my_permissions
 * @property {string} [digest]
 * @property {number} rules_version
 * @property {'members'|'room.settings'} invites
 */

/**
 * @typedef {object} Attachment
 * @property {BlobId} blob
 * @property {string} name
 * @property {string} mime
 * @property {number} size
 * @property {number} [width]
 * @property {number} [height]
 */

/**
 * @typedef {object} Reaction
 * @property {string} emoji
 * @property {UserId[]} users
 */

/**
 * A timeline item (PROTOCOL.md §4.7).
 * @typedef {object} Item
 * @property {EventId} id
 * @property {RoomId} room
 * @property {UserId} author
 * @property {number} ts
 * @property {number} [depth]
 * @property {string} kind
 * @property {boolean} [rejected]
 * @property {string|null} [body]
 * @property {string|null} [html]
 * @property {EventId|null} [thread_root]
 * @property {EventId|null} [reply_to]
 * @property {UserId[]} [mentions]
 * @property {Attachment[]} [attachments]
 * @property {Reaction[]} [reactions]
 * @property {{replies: number, last_ts: number}|null} [thread]
 * @property {string|null} [edited_body]
 * @property {string|null} [edited_html]
 * @property {string|null} [redacted]
 * @property {string|null} [target]
 * @property {string|null} [reason]
 * @property {number|null} [until]
 * @property {string|null} [role]
 * @property {string[]} [permissions]
 * @property {string} [emoji]
 * @property {Settings} [settings]
 * @property {boolean} [direct]
 */

/**
 * @typedef {object} Page
 * @property {Item[]} items
 * @property {boolean} more_before
 * @property {boolean} more_after
 */

/**
 * @typedef {object} ErrorBody
 * @property {string} code
 * @property {string} message
 * @property {number} [retry_after_ms]
 * @property {number} [until]
 */

/**
 * Any server push.
 * @typedef {Hello
 *   | {push: 'room_event', room: RoomId, item: Item}
 *   | {push: 'room_update', summary: RoomSummary}
 *   | {push: 'typing', room: RoomId, user: UserId, typing: boolean}
 *   | {push: 'presence', user: UserId, presence: Presence, last_active: number}
 *   | {push: 'read', room: RoomId, user: UserId, event: EventId}
 *   | {push: 'delivered', room: RoomId, user: UserId, event: EventId}
 *   | {push: 'notice', notice: Notice}
 *   | {push: 'notice_dismissed', notice: string}
 *   | {push: 'revoked'}} Push
 */

/**
 * A note only its user sees (the welcome bot's).
 * @typedef {object} Notice
 * @property {string} id
 * @property {RoomId} room
 * @property {string} from
 * @property {number} ts
 * @property {string} body
 * @property {string} html
 */

/**
 * One version of a message (edit history).
 * @typedef {object} MessageVersion
 * @property {EventId} event
 * @property {UserId} sender
 * @property {number} ts
 * @property {string} body
 * @property {string} html
 */

/**
 * A message the user wrote that the node has not confirmed yet. Kept in
 * IndexedDB so it survives a reload and is re-sent with the same key.
 * @typedef {object} PendingSend
 * @property {string} key idempotency key
 * @property {RoomId} room
 * @property {string} body
 * @property {UserId[]} mentions
 * @property {EventId|null} thread_root
 * @property {EventId|null} reply_to
 * @property {Attachment[]} attachments
 * @property {number} ts when written
 * @property {'queued'|'sending'|'sent'|'failed'} state
 * @property {string} [error] why it failed
 * @property {EventId} [event] the confirmed event id
 */

export {};
