"""Which ClickHouse functions the read sandbox lets a query call (collector/readguard.py).

An allowlist, not a denylist: a function this module has never heard of is refused, so a new
ClickHouse release adds no way out. Allowed are computations over the rows a query reads:
aggregates (with any stack of combinators), conditionals, maths, dates, strings, JSON, arrays,
maps, tuples, window functions and harmless hashes. Left out are functions that reach files,
URLs, dictionaries or other servers, describe the host or the session, sleep, or call another
function named in a string.
"""

from __future__ import annotations

import functools

__all__ = [
    "AGGREGATES",
    "BARE_DENIED",
    "COMBINATORS",
    "DENIED_WHY",
    "SCALARS",
    "TABLE_FUNCTIONS",
    "is_aggregate",
    "is_allowed_function",
    "resolve_function",
]

# Names are compared lower-cased: the query runs as regenerated, and no two ClickHouse
# functions differ only in case except aliases of one another (checked against
# system.functions of ClickHouse 26.9). A name ClickHouse does not have only fails there.


def _words(block: str) -> list[str]:
    return block.split()


def _names(*blocks: str) -> frozenset[str]:
    return frozenset(name.lower() for block in blocks for name in _words(block))


def _conversions() -> str:
    targets = _words(
        """Int8 Int16 Int32 Int64 Int128 Int256 UInt8 UInt16 UInt32 UInt64 UInt128 UInt256
        Float32 Float64 BFloat16 Decimal32 Decimal64 Decimal128 Decimal256 Date Date32
        DateTime DateTime32 DateTime64 Time Time64 UUID IPv4 IPv6"""
    )
    return " ".join(
        f"to{t} to{t}OrZero to{t}OrNull to{t}OrDefault reinterpretAs{t}" for t in targets
    )


AGGREGATES = _names(
    # everyday aggregates
    """count countDistinct sum avg min max any anyLast anyHeavy argMin argMax argAndMin argAndMax
    avgWeighted sumWithOverflow sumKahan sumCount singleValueOrNull uniq uniqExact uniqCombined
    uniqCombined64 uniqHLL12 uniqUpTo uniqTheta topK topKWeighted approx_top_k approx_top_sum
    approx_top_count groupArray groupArrayLast groupArraySample groupArraySorted
    groupArrayInsertAt groupArrayIntersect groupArrayMovingAvg groupArrayMovingSum
    groupUniqArray groupConcat group_concat string_agg array_agg array_concat_agg
    groupBitAnd groupBitOr groupBitXor BIT_AND BIT_OR BIT_XOR groupBitmap groupBitmapAnd
    groupBitmapOr groupBitmapXor sumMap minMap maxMap sumMapWithOverflow sumMapFiltered
    sumMapFilteredWithOverflow sumMappedArrays minMappedArrays maxMappedArrays histogram
    boundingRatio deltaSum deltaSumTimestamp intervalLengthSum retention windowFunnel
    sequenceMatch sequenceCount sequenceMatchEvents sequenceNextNode maxIntersections
    maxIntersectionsPosition largestTriangleThreeBuckets lttb sparkbar sparkBar
    exponentialMovingAverage exponentialTimeDecayedAvg exponentialTimeDecayedCount
    exponentialTimeDecayedMax exponentialTimeDecayedSum nonNegativeDerivative
    estimateCompressionRatio distinctDynamicTypes distinctJSONPaths distinctJSONPathsAndTypes
    mergedJSONPatch nothing nothingNull nothingUInt64 any_value first_value last_value
    any_respect_nulls anyLast_respect_nulls anyRespectNulls anyLastRespectNulls
    anyValueRespectNulls any_value_respect_nulls firstValueRespectNulls
    first_value_respect_nulls lastValueRespectNulls last_value_respect_nulls min_by max_by""",
    # quantiles and medians
    """quantile quantiles quantileExact quantilesExact quantileExactLow quantilesExactLow
    quantileExactHigh quantilesExactHigh quantileExactExclusive quantilesExactExclusive
    quantileExactInclusive quantilesExactInclusive quantileExactWeighted
    quantilesExactWeighted quantileExactWeightedInterpolated quantilesExactWeightedInterpolated
    quantileTiming quantilesTiming quantileTimingWeighted quantilesTimingWeighted
    quantileDeterministic quantilesDeterministic quantileTDigest quantilesTDigest
    quantileTDigestWeighted quantilesTDigestWeighted quantileBFloat16 quantilesBFloat16
    quantileBFloat16Weighted quantilesBFloat16Weighted quantileInterpolatedWeighted
    quantilesInterpolatedWeighted quantileGK quantilesGK quantileDD quantilesDD
    quantilePrometheusHistogram quantilesPrometheusHistogram median medianExact medianExactLow
    medianExactHigh medianExactWeighted medianExactWeightedInterpolated medianTiming
    medianTimingWeighted medianDeterministic medianTDigest medianTDigestWeighted
    medianBFloat16 medianBFloat16Weighted medianInterpolatedWeighted medianGK medianDD""",
    # statistics
    """stddevPop stddevSamp stddevPopStable stddevSampStable varPop varSamp varPopStable
    varSampStable STD STDDEV STDDEV_POP STDDEV_SAMP VAR_POP VAR_SAMP corr corrStable corrMatrix
    covarPop covarSamp covarPopStable covarSampStable covarPopMatrix covarSampMatrix
    COVAR_POP COVAR_SAMP skewPop skewSamp kurtPop kurtSamp entropy gini rankCorr
    simpleLinearRegression analysisOfVariance anova studentTTest studentTTestOneSample
    welchTTest mannWhitneyUTest kolmogorovSmirnovTest meanZTest cramersV cramersVBiasCorrected
    theilsU contingency categoricalInformationValue regr_avgx regr_avgy regr_count
    regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy""",
    # window functions
    """row_number rank dense_rank denseRank percent_rank percentRank cume_dist ntile lag lead
    lagInFrame leadInFrame nth_value""",
)

SCALARS = _names(
    # conditionals, NULLs, logic, comparison
    """if multiIf caseWithoutExpression caseWithoutExpr coalesce ifNull nullIf assumeNotNull
    toNullable isNull isNotNull isNullable isZeroOrNull firstNonDefault greatest least clamp
    ifNotFinite transform and or not xor equals notEquals less greater lessOrEquals
    greaterOrEquals isDistinctFrom isNotDistinctFrom like notLike ilike notILike match notMatch
    matchCaseInsensitive notMatchCaseInsensitive REGEXP_MATCHES throwIf""",
    # arithmetic, rounding, maths
    """plus minus multiply divide divideOrNull divideDecimal multiplyDecimal intDiv intDivOrZero
    intDivOrNull modulo moduloOrZero moduloOrNull mod modOrNull positiveModulo
    positiveModuloOrNull pmod pmodOrNull positive_modulo positive_modulo_or_null negate abs gcd
    lcm max2 min2 midpoint avg2 sqr byteSwap isFinite isInfinite isNaN round roundBankers floor
    ceil ceiling trunc truncate roundDown roundToExp2 roundDuration roundAge exp exp2 exp10 log
    ln log2 log10 log1p sqrt cbrt pow power sin cos tan asin acos atan atan2 sinh cosh tanh
    asinh acosh atanh hypot sign pi e erf erfc lgamma tgamma degrees radians factorial sigmoid
    widthBucket width_bucket intExp2 intExp10""",
    # type conversion
    _conversions(),
    """CAST DATE toString toFixedString toStringCutToZero toDecimalString toBool toTypeName
    toColumnTypeName toLowCardinality toJSONString accurateCast accurateCastOrNull
    accurateCastOrDefault reinterpret reinterpretAsString reinterpretAsFixedString toUUID
    toUUIDOrZero toUUIDOrNull toUUIDOrDefault toInterval toIntervalNanosecond
    toIntervalMicrosecond toIntervalMillisecond toIntervalSecond toIntervalMinute
    toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth toIntervalQuarter
    toIntervalYear toUnixTimestamp toUnixTimestamp64Second toUnixTimestamp64Milli
    toUnixTimestamp64Micro toUnixTimestamp64Nano fromUnixTimestamp fromUnixTimestamp64Second
    fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Nano
    fromUnixTimestampInJodaSyntax FROM_UNIXTIME parseDateTime parseDateTimeOrNull
    parseDateTimeOrZero parseDateTime64 parseDateTime64OrNull parseDateTime64OrZero
    parseDateTimeInJodaSyntax parseDateTimeInJodaSyntaxOrNull parseDateTimeInJodaSyntaxOrZero
    parseDateTime64InJodaSyntax parseDateTime64InJodaSyntaxOrNull
    parseDateTime64InJodaSyntaxOrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
    parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
    parseDateTimeBestEffortUSOrZero parseDateTime32BestEffort parseDateTime32BestEffortOrNull
    parseDateTime32BestEffortOrZero parseDateTime64BestEffort parseDateTime64BestEffortOrNull
    parseDateTime64BestEffortOrZero parseDateTime64BestEffortUS
    parseDateTime64BestEffortUSOrNull parseDateTime64BestEffortUSOrZero str_to_date
    TO_UNIXTIME""",
    # dates and times (not timezone() / serverTimezone(): they describe the server)
    """now now64 nowInBlock nowInBlock64 today yesterday curdate current_date current_timestamp
    localtimestamp localtime UTCTimestamp UTC_timestamp timestamp toStartOfYear
    toStartOfISOYear toStartOfQuarter toStartOfMonth toStartOfWeek toMonday toStartOfDay
    toStartOfHour toStartOfFifteenMinutes toStartOfTenMinutes toStartOfFiveMinutes
    toStartOfFiveMinute toStartOfMinute toStartOfSecond toStartOfMillisecond
    toStartOfMicrosecond toStartOfNanosecond toStartOfInterval date_bin time_bucket
    toLastDayOfMonth toLastDayOfWeek LAST_DAY toYear toQuarter toMonth toDayOfYear
    toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond toMicrosecond toNanosecond
    toISOYear toISOWeek toWeek toYearWeek week yearweek YEAR QUARTER MONTH DAY DAYOFMONTH
    DAYOFWEEK DAYOFYEAR HOUR MINUTE SECOND MILLISECOND MICROSECOND NANOSECOND toYYYYMM
    toYYYYMMDD toYYYYMMDDhhmmss YYYYMMDDToDate YYYYMMDDToDate32 YYYYMMDDhhmmssToDateTime
    YYYYMMDDhhmmssToDateTime64 toRelativeYearNum toRelativeQuarterNum toRelativeMonthNum
    toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum
    toRelativeSecondNum toMonthNumSinceEpoch toYearNumSinceEpoch toDaysSinceYearZero TO_DAYS
    fromDaysSinceYearZero fromDaysSinceYearZero32 FROM_DAYS toModifiedJulianDay
    toModifiedJulianDayOrNull fromModifiedJulianDay fromModifiedJulianDayOrNull toDaysInMonth
    toTimezone toTimeZone timezoneOf timeZoneOf timezoneOffset timeZoneOffset toUTCTimestamp
    to_utc_timestamp fromUTCTimestamp from_utc_timestamp toTimeWithFixedDate dateDiff
    date_diff DATE_DIFF timestampDiff timestamp_diff TIMESTAMP_DIFF timeDiff age dateAdd
    date_add DATE_ADD dateSub date_sub DATE_SUB timestampAdd timestamp_add TIMESTAMP_ADD
    timestampSub timestamp_sub TIMESTAMP_SUB addDate subDate addInterval subtractInterval
    addTupleOfIntervals subtractTupleOfIntervals addYears addQuarters addMonths addWeeks addDays
    addHours addMinutes addSeconds addMilliseconds addMicroseconds addNanoseconds subtractYears
    subtractQuarters subtractMonths subtractWeeks subtractDays subtractHours subtractMinutes
    subtractSeconds subtractMilliseconds subtractMicroseconds subtractNanoseconds dateTrunc
    date_trunc DATE_TRUNC dateName monthName formatDateTime formatDateTimeInJodaSyntax
    DATE_FORMAT makeDate makeDate32 makeDateTime makeDateTime64 changeYear changeMonth
    changeDay changeHour changeMinute changeSecond timeSlot timeSlots tumble tumbleStart
    tumbleEnd hop hopStart hopEnd""",
    # strings
    """length empty notEmpty lengthUTF8 CHAR_LENGTH CHARACTER_LENGTH OCTET_LENGTH CARDINALITY
    lower upper lowerUTF8 upperUTF8 lcase ucase caseFoldUTF8 initcap initcapUTF8 concat
    concatAssumeInjective concatWithSeparator concatWithSeparatorAssumeInjective concat_ws
    substring substr mid byteSlice substringUTF8 substringIndex substringIndexUTF8
    SUBSTRING_INDEX left leftUTF8 right rightUTF8 leftPad leftPadUTF8 rightPad rightPadUTF8
    lpad rpad trimLeft trimRight trimBoth ltrim rtrim trim repeat space reverse reverseUTF8
    format printf startsWith startsWithUTF8 startsWithCaseInsensitive
    startsWithCaseInsensitiveUTF8 endsWith endsWithUTF8 endsWithCaseInsensitive
    endsWithCaseInsensitiveUTF8 appendTrailingCharIfAbsent firstLine ascii soundex
    isValidUTF8 toValidUTF8 isValidASCII isASCII normalizeUTF8NFC normalizeUTF8NFD
    normalizeUTF8NFKC normalizeUTF8NFKD normalizeUTF8NFKCCasefold removeDiacriticsUTF8
    removeAccentsUTF8 naturalSortKey NATURAL_SORT_KEY editDistance editDistanceUTF8
    levenshteinDistance levenshteinDistanceUTF8 damerauLevenshteinDistance jaroSimilarity
    jaroWinklerSimilarity stringJaccardIndex stringJaccardIndexUTF8 byteHammingDistance
    mismatches compareSubstrings stringBytesEntropy stringBytesUniq decodeHTMLComponent
    decodeXMLComponent encodeXMLComponent extractTextFromHTML basename
    position positionUTF8 positionCaseInsensitive positionCaseInsensitiveUTF8 locate instr
    countSubstrings countSubstringsCaseInsensitive countSubstringsCaseInsensitiveUTF8
    countMatches countMatchesCaseInsensitive extract extractAll extractGroups
    extractAllGroups extractAllGroupsHorizontal extractAllGroupsVertical regexpExtract
    REGEXP_EXTRACT REGEXP_SUBSTR regexpPosition regexpInstr regexp_instr regexpQuoteMeta
    hasToken hasTokenOrNull hasTokenCaseInsensitive hasTokenCaseInsensitiveOrNull
    hasAllTokens hasAnyTokens hasAllToken hasAnyToken hasPhrase matchPhrase hasSubsequence
    hasSubsequenceUTF8 hasSubsequenceCaseInsensitive hasSubsequenceCaseInsensitiveUTF8
    multiSearchAny multiSearchAnyUTF8 multiSearchAnyCaseInsensitive
    multiSearchAnyCaseInsensitiveUTF8 multiSearchFirstIndex multiSearchFirstIndexUTF8
    multiSearchFirstIndexCaseInsensitive multiSearchFirstIndexCaseInsensitiveUTF8
    multiSearchFirstPosition multiSearchFirstPositionUTF8
    multiSearchFirstPositionCaseInsensitive multiSearchFirstPositionCaseInsensitiveUTF8
    multiSearchAllPositions multiSearchAllPositionsUTF8 multiSearchAllPositionsCaseInsensitive
    multiSearchAllPositionsCaseInsensitiveUTF8 multiMatchAny multiMatchAnyIndex
    multiMatchAllIndices multiFuzzyMatchAny multiFuzzyMatchAnyIndex
    multiFuzzyMatchAllIndices ngramDistance ngramDistanceUTF8 ngramDistanceCaseInsensitive
    ngramDistanceCaseInsensitiveUTF8 ngramSearch ngramSearchUTF8 ngramSearchCaseInsensitive
    ngramSearchCaseInsensitiveUTF8 replaceAll replace replaceOne replaceRegexpAll
    replaceRegexpOne REGEXP_REPLACE translate translateUTF8 overlay overlayUTF8 splitByChar
    splitByString splitByRegexp splitByWhitespace splitByNonAlpha splitByAlpha alphaTokens
    arrayStringConcat array_to_string ngrams tokens reverseBySeparator""",
    # encodings and harmless hashes
    """hex unhex bin unbin char base64Encode base64Decode tryBase64Decode base64URLEncode
    base64URLDecode tryBase64URLDecode TO_BASE64 FROM_BASE64 base58Encode base58Decode
    tryBase58Decode base32Encode base32Decode tryBase32Decode bitmaskToArray bitmaskToList
    bitPositionsToArray bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitRotateLeft
    bitRotateRight bitSlice bitTest bitTestAll bitTestAny bitCount bitHammingDistance
    cityHash64 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 xxh3_128 murmurHash2_32
    murmurHash2_64 murmurHash3_32 murmurHash3_64 murmurHash3_128 farmHash64 farmFingerprint64
    metroHash64 wyHash64 intHash32 intHash64 halfMD5 MD4 MD5 SHA1 SHA224 SHA256 SHA384 SHA512
    SHA512_256 javaHash hiveHash gccMurmurHash kafkaMurmurHash CRC32 CRC32IEEE CRC64 URLHash
    jumpConsistentHash kostikConsistentHash""",
    # JSON
    """JSONHas JSONLength JSONArrayLength JSON_ARRAY_LENGTH JSONKey JSONType JSONExtract
    JSONExtractUInt JSONExtractInt JSONExtractFloat JSONExtractBool JSONExtractString
    JSONExtractRaw JSONExtractArrayRaw JSONExtractKeys JSONExtractKeysAndValues
    JSONExtractKeysAndValuesRaw JSONExtractCaseInsensitive JSONExtractUIntCaseInsensitive
    JSONExtractIntCaseInsensitive JSONExtractFloatCaseInsensitive
    JSONExtractBoolCaseInsensitive JSONExtractStringCaseInsensitive
    JSONExtractRawCaseInsensitive JSONExtractArrayRawCaseInsensitive
    JSONExtractKeysCaseInsensitive JSONExtractKeysAndValuesCaseInsensitive
    JSONExtractKeysAndValuesRawCaseInsensitive JSONAllPaths JSONAllPathsWithTypes
    JSONAllValues JSONDynamicPaths JSONDynamicPathsWithTypes JSONSharedDataPaths
    JSONSharedDataPathsWithTypes JSONMergePatch jsonMergePatch JSON_EXISTS JSON_QUERY
    JSON_VALUE isValidJSON prettyPrintJSON simpleJSONHas simpleJSONExtractUInt
    simpleJSONExtractInt simpleJSONExtractFloat simpleJSONExtractBool simpleJSONExtractRaw
    simpleJSONExtractString visitParamHas visitParamExtractUInt visitParamExtractInt
    visitParamExtractFloat visitParamExtractBool visitParamExtractRaw visitParamExtractString
    dynamicType dynamicElement isDynamicElementInSharedData variantElement variantType
    getSubcolumn""",
    # arrays (not arrayReduce*: it calls an aggregate named by a string)
    """array range has hasAll hasAny hasSubstr notHas indexOf indexOfAssumeSorted countEqual
    arrayElement arrayElementOrNull arrayJoin unnest arrayConcat arrayPushBack arrayPushFront
    arrayPopBack arrayPopFront arrayResize arraySlice arraySort arrayReverseSort
    arrayPartialSort arrayPartialReverseSort arrayShuffle arrayPartialShuffle
    arrayRandomSample arrayReverse arrayFlatten flatten arrayCompact arrayDistinct arrayUniq
    arrayEnumerate arrayEnumerateDense arrayEnumerateUniq arrayEnumerateDenseRanked
    arrayEnumerateUniqRanked arrayIntersect arrayUnion arrayExcept arraySymmetricDifference
    arrayRemove array_remove arrayZip arrayZipUnaligned arrayMap arrayFilter arrayFill
    arrayReverseFill arraySplit arrayReverseSplit arrayExists arrayAll arrayCount arrayFirst
    arrayFirstOrNull arrayFirstIndex arrayLast arrayLastOrNull arrayLastIndex arrayMin
    arrayMax arraySum arrayAvg arrayProduct arrayCumSum arrayCumSumNonNegative
    arrayDifference arrayDotProduct arrayFold arrayShingles arrayRotateLeft arrayRotateRight
    arrayShiftLeft arrayShiftRight arrayWithConstant arrayTopK arrayBottomK arrayTranspose
    arrayAUC arrayROCAUC arrayPRAUC arrayAUCPR arrayJaccardIndex arraySimilarity
    arrayLevenshteinDistance arrayLevenshteinDistanceWeighted arrayNormalizedGini
    arrayAutocorrelation arrayFlattenedLength emptyArrayUInt8 emptyArrayUInt16
    emptyArrayUInt32 emptyArrayUInt64 emptyArrayInt8 emptyArrayInt16 emptyArrayInt32
    emptyArrayInt64 emptyArrayFloat32 emptyArrayFloat64 emptyArrayDate emptyArrayDateTime
    emptyArrayString emptyArrayToSingle replicate""",
    # tuples and maps
    """tuple tupleElement untuple tupleNames tupleConcat flattenTuple tupleToNameValuePairs
    tuplePlus tupleMinus tupleMultiply tupleDivide tupleNegate tupleModulo
    tupleMultiplyByNumber tupleDivideByNumber tupleModuloByNumber tupleIntDiv
    tupleIntDivByNumber tupleIntDivOrZero tupleIntDivOrZeroByNumber
    tuplePositiveModuloByNumber tupleHammingDistance dotProduct scalarProduct vectorSum
    vectorDifference map mapFromArrays MAP_FROM_ARRAYS mapKeys mapValues mapContains
    mapContainsKey mapContainsKeyLike mapContainsValue mapContainsValueLike mapExtractKeyLike
    mapExtractValueLike mapAdd mapSubtract mapUpdate mapConcat mapApply mapFilter mapExists
    mapAll mapSort mapReverseSort mapPartialSort mapPartialReverseSort mapPopulateSeries
    extractKeyValuePairs extractKeyValuePairsWithEscaping mapFromString str_to_map""",
    # URLs, IP addresses, UUIDs, random numbers (values, never fetched or resolved)
    """protocol domain domainRFC domainWithoutWWW domainWithoutWWWRFC topLevelDomain
    topLevelDomainRFC firstSignificantSubdomain firstSignificantSubdomainRFC
    cutToFirstSignificantSubdomain cutToFirstSignificantSubdomainRFC
    cutToFirstSignificantSubdomainWithWWW cutToFirstSignificantSubdomainWithWWWRFC port
    portRFC path pathFull queryString fragment queryStringAndFragment netloc
    extractURLParameter extractURLParameters extractURLParameterNames URLHierarchy
    URLPathHierarchy encodeURLComponent decodeURLComponent encodeURLFormComponent
    decodeURLFormComponent cutWWW cutQueryString cutFragment cutQueryStringAndFragment
    cutURLParameter IPv4NumToString IPv4StringToNum IPv4StringToNumOrDefault
    IPv4StringToNumOrNull IPv4NumToStringClassC IPv4ToIPv6 IPv6NumToString IPv6StringToNum
    IPv6StringToNumOrDefault IPv6StringToNumOrNull IPv4CIDRToRange IPv6CIDRToRange cutIPv6
    isIPv4String isIPv6String isIPAddressInRange INET_ATON INET_NTOA INET6_ATON INET6_NTOA
    toIPv4OrZero toIPv6OrZero MACNumToString MACStringToNum MACStringToOUI UUIDNumToString
    UUIDStringToNum UUIDToNum UUIDv7ToDateTime generateUUIDv4 generateUUIDv7 rand rand32
    rand64 randCanonical randConstant randUniform randNormal randLogNormal randExponential
    randBernoulli randBinomial randPoisson randomString randomFixedString
    randomPrintableASCII randomStringUTF8 fuzzBits""",
    # presentation and introspection of values (not of the server)
    """currentDatabase current_database DATABASE SCHEMA currentSchemas bar formatReadableSize
    FORMAT_BYTES formatReadableDecimalSize formatReadableQuantity formatReadableTimeDelta
    parseReadableSize parseReadableSizeOrNull parseReadableSizeOrZero parseTimeDelta
    parseISO8601Duration countDigits identity ignore materialize isConstant isDecimalOverflow
    defaultValueOfArgumentType defaultValueOfTypeName getSizeOfEnumType visibleWidth byteSize
    errorCodeToName finalizeAggregation runningAccumulate runningDifference
    runningDifferenceStartingWithFirstValue neighbor rowNumberInBlock rowNumberInAllBlocks
    blockSize indexHint""",
    # names the parser gives syntax it types itself (CAST, EXTRACT, EXISTS, COLUMNS)
    "exists columns",
)

#: Aggregate function combinators, each a pure transformation of its aggregate.
COMBINATORS = tuple(
    sorted(
        _names(
            """If Array Map SimpleState State Merge MergeState ForEach Distinct OrDefault OrNull
            Resample ArgMin ArgMax"""
        ),
        key=len,
        reverse=True,
    )
)

#: Functions refused with a reason users can act on (everything not allowed is refused; these
#: only get a better message). The names are lower-cased.
DENIED_WHY: dict[str, str] = {
    **dict.fromkeys(
        _names(
            """file url s3 s3Cluster hdfs gcs azureBlobStorage remote remoteSecure mysql
            postgresql jdbc odbc executable input iceberg deltaLake hudi mongodb redis
            sqlite"""
        ),
        "it reads files or the network outside the database",
    ),
    **dict.fromkeys(
        _names(
            """hostName hostname FQDN fullHostName version revision uptime buildId
            getOSKernelVersion serverUUID tcpPort getServerPort displayName timezone timeZone
            serverTimezone serverTimeZone getMacro getSetting getSettingOrDefault
            getServerSetting getMergeTreeSetting shardNum shardCount currentUser current_user
            user session_user authenticatedUser authUser currentRoles enabledRoles defaultRoles
            currentProfiles enabledProfiles defaultProfiles currentQueryID current_query_id
            queryID query_id initialQueryID initial_query_id initialQueryStartTime
            initial_query_start_time currentRequestURL currentHandler getClientHTTPHeader
            connectionId connection_id filesystemAvailable filesystemCapacity
            filesystemUnreserved zookeeperSessionUptime transactionID transactionLatestSnapshot
            transactionOldestSnapshot globalVariable showCertificate chdb
            getMaxTableNameLengthForDatabase"""
        ),
        "it reveals the server, the host or the session",
    ),
    **dict.fromkeys(
        _names(
            """dictGet dictGetOrDefault dictGetOrNull dictGetString dictGetAll dictHas dictIsIn
            dictGetHierarchy dictGetChildren dictGetDescendants dictGetKeys joinGet
            joinGetOrNull hasColumnInTable regionToName regionToCountry regionToCity
            regionHierarchy arrayReduce arrayReduceInRanges initializeAggregation formatRow
            formatRowNoNewline in notIn globalIn globalNotIn nullIn notNullIn globalNullIn
            globalNotNullIn"""
        ),
        "it reads dictionaries, tables or functions named by a string, past the table check",
    ),
    **dict.fromkeys(
        _names("sleep sleepEachRow"),
        "it holds a query slot without doing work",
    ),
    **dict.fromkeys(
        _names(
            """addressToLine addressToLineWithInlines addressToSymbol demangle logTrace tid
            flameGraph catboostEvaluate evalMLMethod modelEvaluate aiGenerate aiClassify
            aiExtract aiFilter aiEmbed aiRedact aiSimilarity aiTranslate generateSerialID"""
        ),
        "it inspects the server or calls out of it",
    ),
}

#: Functions ClickHouse also runs written as a bare identifier (``SELECT user``), found by
#: trying every function of system.functions (ClickHouse 26.9), plus their relatives: refused in
#: that form. (``version`` is not among them, and it is a column of schema_migrations.)
BARE_DENIED = _names(
    """currentUser current_user user session_user authenticatedUser authUser currentHandler
    currentRequestURL currentRoles enabledRoles defaultRoles currentProfiles enabledProfiles
    defaultProfiles currentQueryID current_query_id queryID query_id initialQueryID
    initial_query_id connectionId connection_id hostName FQDN fullHostName uptime serverUUID
    tcpPort getServerPort displayName buildId getOSKernelVersion serverTimezone shardNum
    shardCount"""
)

#: ClickHouse's table functions (system.table_functions, 26.9): a name from this list is never
#: taken for a parameterized view, even when the database has a view of that name, because
#: ClickHouse would resolve the table function.
TABLE_FUNCTIONS = _names(
    """SQLStandardValues arrowstream azureBlobStorage azureBlobStorageCluster bigquery cluster
    clusterAllReplicas cosn deltaLake deltaLakeAzure deltaLakeAzureCluster deltaLakeCluster
    deltaLakeLocal deltaLakeS3 deltaLakeS3Cluster dictionary eval executable file fileCluster
    filesystem format fuzzJSON fuzzQuery gcs generateRandom generateSeries generate_series hdfs
    hdfsCluster hudi hudiCluster iceberg icebergAzure icebergAzureCluster icebergCluster
    icebergHDFS icebergHDFSCluster icebergLocal icebergLocalCluster icebergS3 icebergS3Cluster
    input jdbc loop merge mergeTreeAnalyzeIndexes mergeTreeAnalyzeIndexesUUID
    mergeTreeCodecBlockCounts mergeTreeIndex mergeTreeProjection mergeTreeTextIndex mongodb
    mysql null numbers numbers_mt odbc oss paimon paimonAzure paimonAzureCluster paimonCluster
    paimonHDFS paimonHDFSCluster paimonLocal paimonS3 paimonS3Cluster postgresql primes
    prometheusQuery prometheusQueryRange python redis remote remoteSecure s3 s3Cluster sqlite
    timeSeriesData timeSeriesMetricFamilies timeSeriesMetrics timeSeriesSamples
    timeSeriesSelector timeSeriesTags url urlCluster values view viewExplain viewIfPermitted
    ytsaurus zeros zeros_mt"""
)


@functools.lru_cache(maxsize=4096)
def is_aggregate(name: str) -> bool:
    """``name`` (lower-cased) is an allowed aggregate, with any stack of combinators."""
    if name in AGGREGATES:
        return True
    return any(
        name.endswith(suffix) and len(name) > len(suffix) and is_aggregate(name[: -len(suffix)])
        for suffix in COMBINATORS
    )


def resolve_function(name: str) -> bool:
    return name not in DENIED_WHY and (name in SCALARS or is_aggregate(name))


def is_allowed_function(name: str) -> bool:
    """Whether the read API allows calling ``name`` (an aggregate with combinators included)."""
    return resolve_function(name.lower())
