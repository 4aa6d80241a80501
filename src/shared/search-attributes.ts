// Search attributes that let an operator filter changes in the Temporal UI and the CLI's bulk audit.
// Registered by `foureyes up` (and the test setup) on the foureyes namespace.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RepoAttr = defineSearchAttributeKey('FoureyesRepo', SearchAttributeType.KEYWORD);
export const PullNumberAttr = defineSearchAttributeKey('FoureyesPR', SearchAttributeType.INT);
export const AuthorAttr = defineSearchAttributeKey('FoureyesAuthor', SearchAttributeType.KEYWORD);
export const InitiatorsAttr = defineSearchAttributeKey('FoureyesInitiators', SearchAttributeType.KEYWORD_LIST);
export const ApproversAttr = defineSearchAttributeKey('FoureyesApprovers', SearchAttributeType.KEYWORD_LIST);
export const StageAttr = defineSearchAttributeKey('FoureyesStage', SearchAttributeType.KEYWORD);
export const HeadShaAttr = defineSearchAttributeKey('FoureyesHeadSha', SearchAttributeType.KEYWORD);
/** Set only on changes with a break-glass emergency: the latest one's state (open, review-due, overdue, reviewed, ...). */
export const EmergencyAttr = defineSearchAttributeKey('FoureyesEmergency', SearchAttributeType.KEYWORD);

/** Name -> type as the Temporal CLI's `--search-attribute` flag spells it. */
export const SEARCH_ATTRIBUTES: Record<string, string> = {
  FoureyesRepo: 'Keyword',
  FoureyesPR: 'Int',
  FoureyesAuthor: 'Keyword',
  FoureyesInitiators: 'KeywordList',
  FoureyesApprovers: 'KeywordList',
  FoureyesStage: 'Keyword',
  FoureyesHeadSha: 'Keyword',
  FoureyesEmergency: 'Keyword',
};
