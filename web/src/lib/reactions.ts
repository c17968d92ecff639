// Reactions as the API gives them: every kind, in a fixed order, with its count and whether
// the signed-in reader gave it.

export type ReactionKind = 'LIKE' | 'HEART' | 'LAUGH' | 'TADA' | 'WOW';

export interface Reaction {
	kind: ReactionKind;
	emoji: string;
	count: number;
	viewerReacted: boolean;
}

export const REACTION_FIELDS = 'kind emoji count viewerReacted';
